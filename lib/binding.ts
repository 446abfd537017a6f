// Loads the native addon and types its raw surface. The only file that touches the binding object directly;
// names on both sides of the boundary start with Addon (style.md). Bulk data crosses as typed arrays.
import * as path from 'path';
import { errorFromCode } from './errors';

export type AddonDTypeCode = 0 | 1 | 2 | 3 | 4; // f32, f16, bf16, i32, i8 (engine/ops.h DType)
export type AddonArray = Float32Array | Uint16Array | Int32Array | Int8Array;

export interface AddonTensor {
  readonly bytes: number;
  readonly disposed: boolean;
  readonly device: string;
  read(): Promise<AddonArray>;
  readSync(): AddonArray;
  toDeviceSync(device: string): AddonTensor;
  dispose(): void;
}

export interface AddonTensorConstructor {
  new (device: string, dtype: AddonDTypeCode, numel: number, data: AddonArray | null, fill?: 'poison' | 'zero'): AddonTensor;
}

export interface AddonCudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
  smCount: number;
}

export interface AddonBinding {
  AddonTensor: AddonTensorConstructor;
  devices(): { cudaCompiled: boolean; cudaUsable: boolean; reason: string | null; cuda: AddonCudaDevice[] };
  setEmuOptions(options: { reverseOrder?: boolean }): void;
  setErrorFactory(factory: (code: string, message: string) => Error): void;
  runOpSync(op: string, device: string, params: Record<string, unknown>): void;
}

/** The package root: the same from lib/ (ts-jest) and dist/ (compiled). */
export const packageRoot = path.resolve(__dirname, '..');

let cached: AddonBinding | undefined;

export function binding(): AddonBinding {
  if (cached) return cached;
  let addon: AddonBinding;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require('node-gyp-build')(packageRoot) as AddonBinding;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(
      [
        'Could not load the eet native addon.',
        `Tried: build/Release/eet.node and prebuilds/${process.platform}-${process.arch}/ under ${packageRoot}`,
        `Reason: ${reason}`,
        'Possible solutions:',
        '- Reinstall so the install script can build it: npm install --foreground-scripts eet',
        '- Build it from this folder: npm run build:native (needs g++; nvcc + cmake for the CUDA backend)',
        `- Check that your platform (${process.platform}-${process.arch}, Node ${process.versions.node}) is supported`,
      ].join('\n'),
      { cause: e },
    );
  }
  addon.setErrorFactory((code, message) => errorFromCode(code, message));
  cached = addon;
  return addon;
}
