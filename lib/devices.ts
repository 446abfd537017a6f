// Which devices exist. Never throws for a missing GPU: `devices()` says why CUDA is unusable instead.
import { binding } from './binding';
import { invalid } from './validate';
import type { Device } from './tensor';

export type DeviceInfo =
  | { kind: 'cuda'; device: Device; index: number; name: string; computeCapability: string; totalMemory: number; smCount: number }
  | { kind: 'cpu'; device: 'cpu' }
  | { kind: 'emu'; device: 'emu' };

export interface DeviceReport {
  devices: DeviceInfo[];
  /** Why there is no usable CUDA device (no driver, no device, architecture too old, not built with CUDA). */
  cudaUnavailableReason: string | null;
}

export function deviceReport(): DeviceReport {
  const r = binding().devices();
  const cuda: DeviceInfo[] = r.cudaUsable
    ? r.cuda.filter((d) => Number(d.computeCapability.split('.')[0]) >= 8)
        .map((d) => ({ kind: 'cuda' as const, device: `cuda:${d.index}` as Device, ...d }))
    : [];
  return { devices: [...cuda, { kind: 'cpu', device: 'cpu' }, { kind: 'emu', device: 'emu' }], cudaUnavailableReason: r.reason };
}

/** GPUs first (name, compute capability, memory), then cpu and emu. */
export function devices(): DeviceInfo[] {
  return deviceReport().devices;
}

/** 'auto' resolves to the first usable GPU, else 'cpu'. */
export function resolveDevice(device: unknown): Device {
  if (device === 'auto' || device === undefined) {
    const gpu = devices().find((d) => d.kind === 'cuda');
    return gpu ? gpu.device : 'cpu';
  }
  return parseDevice(device);
}

export function parseDevice(device: unknown): Device {
  if (device === 'cpu' || device === 'cpu-ref' || device === 'emu' || device === 'cuda') return device;
  if (typeof device === 'string' && /^cuda:\d{1,3}$/.test(device)) return device as Device;
  throw invalid('device', "'cpu', 'cpu-ref', 'emu', 'cuda', 'cuda:N' or 'auto'", device);
}
