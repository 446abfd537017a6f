// Every error the package raises is an EetError with a stable `code`. Native errors are created through the
// factory registered in binding.ts, so they arrive as these classes with the JS stack of the call site.

export type EetErrorCode =
  | 'ERR_INVALID_ARG'
  | 'ERR_MODEL_FORMAT'
  | 'ERR_UNSUPPORTED'
  | 'ERR_CUDA'
  | 'ERR_OOM'
  | 'ERR_DISPOSED'
  | 'ERR_ABORTED'
  | 'ERR_KERNEL'
  | 'ERR_BUSY'
  | 'ERR_NUMERIC'
  | 'ERR_INTERNAL';

export class EetError extends Error {
  readonly code: EetErrorCode;
  constructor(code: EetErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad argument: wrong type (`TypeError`-like) or out of range; the message names the option and the value. */
export class InvalidArgumentError extends EetError {
  constructor(message: string) { super('ERR_INVALID_ARG', message); }
}
/** A model file or directory that is malformed, truncated or inconsistent. */
export class ModelFormatError extends EetError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_MODEL_FORMAT', message, options); }
}
export class UnsupportedError extends EetError {
  constructor(message: string) { super('ERR_UNSUPPORTED', message); }
}
export class CudaError extends EetError {
  constructor(message: string) { super('ERR_CUDA', message); }
}
export class OutOfMemoryError extends EetError {
  constructor(message: string) { super('ERR_OOM', message); }
}
export class DisposedError extends EetError {
  constructor(message: string) { super('ERR_DISPOSED', message); }
}
export class AbortError extends EetError {
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) { super('ERR_ABORTED', message, options); }
}
/** A kernel bug caught by the emulator (divergent barrier, crash inside a kernel). */
export class KernelError extends EetError {
  constructor(message: string) { super('ERR_KERNEL', message); }
}
/** A context's request queue is full (maxQueued requests wait for admission): retry later. */
export class BusyError extends EetError {
  constructor(message: string) { super('ERR_BUSY', message); }
}
/**
 * The model produced non-finite logits (NaN or infinity) for a request: broken or overflowing weights, or
 * activations that overflow the dtype. Only the requests whose logits were non-finite fail; the message names the
 * step and the position.
 */
export class NumericError extends EetError {
  constructor(message: string) { super('ERR_NUMERIC', message); }
}
export class InternalError extends EetError {
  constructor(message: string) { super('ERR_INTERNAL', message); }
}

const byCode: Record<EetErrorCode, new (message: string) => EetError> = {
  ERR_INVALID_ARG: InvalidArgumentError,
  ERR_MODEL_FORMAT: ModelFormatError,
  ERR_UNSUPPORTED: UnsupportedError,
  ERR_CUDA: CudaError,
  ERR_OOM: OutOfMemoryError,
  ERR_DISPOSED: DisposedError,
  ERR_ABORTED: AbortError,
  ERR_KERNEL: KernelError,
  ERR_BUSY: BusyError,
  ERR_NUMERIC: NumericError,
  ERR_INTERNAL: InternalError,
};

/** Builds the EetError subclass for a code (used for errors coming from native code). */
export function errorFromCode(code: string, message: string): EetError {
  const Ctor = byCode[code as EetErrorCode] ?? InternalError;
  return new Ctor(message);
}
