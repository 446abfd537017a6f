// Opening and reading the files a caller names as a model, a tokenizer or a config. Paths are untrusted: a FIFO
// blocks open() (and with it a libuv thread) until a writer appears, /dev/zero never ends, a directory cannot be
// read. So every path is stat'ed before it is opened, opened non-blocking, fstat'ed again through the descriptor (the
// path may have been replaced in between), and read for at most the size fstat reported — and at most a bound per
// kind of file, so a 10 GB "tokenizer.json" is refused before a byte is read.
import * as fs from 'fs';
import { AbortError, ModelFormatError } from '../errors';

const MiB = 2 ** 20;

/** The most bytes read from each kind of small file (weights are read natively, from validated offsets). */
export const READ_LIMITS = {
  /** tokenizer.json: the largest published ones (multilingual vocabularies of 250K tokens) are under 40 MB. */
  tokenizerJson: 256 * MiB,
  /** config.json, generation_config.json, tokenizer_config.json (chat templates and added-token tables included). */
  configJson: 16 * MiB,
  /** llama2.c tokenizer .bin: 4 + vocab × (8 + max_token_length) bytes; tok32000.bin is 424 KB. */
  llama2cTokenizer: 64 * MiB,
} as const;

/** Reads go in chunks of this size, with an abort check between chunks. */
const CHUNK = 4 * MiB;

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'something else';
}

function notRegular(file: string, what: string, st: fs.Stats): ModelFormatError {
  return new ModelFormatError(`Cannot read the ${what} ${file}: it is ${kindOf(st)}, not a regular file`);
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortError(`Reading the ${what} was aborted`, { cause: signal.reason });
}

/**
 * The path's stat (following symlinks); ENOENT etc. become ModelFormatError. `directory` allows a directory (an HF
 * folder); anything else must be a regular file.
 */
export async function statModelPath(file: string, what: string, directory = false, verb: 'open' | 'read' = 'open'): Promise<fs.Stats> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    throw new ModelFormatError(`Cannot ${verb} the ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isFile() && !(directory && st.isDirectory())) throw notRegular(file, what, st);
  return st;
}

export interface OpenedFile {
  fh: fs.promises.FileHandle;
  /** The size fstat reported for the opened descriptor: never read past it. */
  size: number;
}

/**
 * Opens a regular file for reading without ever blocking on it: stat first (a FIFO is refused before open), then
 * O_NONBLOCK (should the path have become a FIFO meanwhile, open returns at once), then fstat of the descriptor.
 */
export async function openRegularFile(file: string, what: string, verb: 'open' | 'read' = 'open'): Promise<OpenedFile> {
  await statModelPath(file, what, false, verb);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new ModelFormatError(`Cannot ${verb} the ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(file, what, st);
    return { fh, size: st.size };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/**
 * Reads `length` bytes at `position` of an opened file, in chunks (checking `signal` between them); a file that
 * ends early (it shrank after fstat) is a ModelFormatError.
 */
export async function readExactly(fh: fs.promises.FileHandle, file: string, what: string, position: number, length: number,
  signal?: AbortSignal): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    throwIfAborted(signal, what);
    const { bytesRead } = await fh.read(buf, done, Math.min(CHUNK, length - done), position + done);
    if (bytesRead === 0) throw new ModelFormatError(`Cannot read the ${what} ${file}: it ended after ${done} of ${length} bytes (did it change while being read?)`);
    done += bytesRead;
  }
  return buf;
}

/** A whole regular file of at most `maxBytes` bytes (the size is checked before anything is read). */
export async function readRegularFile(file: string, what: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
  throwIfAborted(signal, what);
  const { fh, size } = await openRegularFile(file, what, 'read');
  try {
    if (size > maxBytes) {
      throw new ModelFormatError(`Cannot read the ${what} ${file}: it has ${size} bytes, over the limit of ${maxBytes} for such a file`);
    }
    return await readExactly(fh, file, what, 0, size, signal);
  } finally {
    await fh.close();
  }
}
