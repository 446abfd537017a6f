// devices() lists GPUs and says why CUDA is unusable instead of throwing.
import { deviceReport, devices, resolveDevice } from '../../lib';

test('cpu and emu are always listed, after any GPU', () => {
  const list = devices();
  const kinds = list.map((d) => d.kind);
  expect(kinds.slice(-2)).toEqual(['cpu', 'emu']);
  for (const d of list.filter((x) => x.kind === 'cuda')) {
    if (d.kind !== 'cuda') continue;
    expect(d.name.length).toBeGreaterThan(0);
    expect(Number(d.computeCapability.split('.')[0])).toBeGreaterThanOrEqual(8);
    expect(d.totalMemory).toBeGreaterThan(0);
  }
});

test('without a usable GPU there is a reason and auto resolves to cpu', () => {
  const r = deviceReport();
  const hasGpu = r.devices.some((d) => d.kind === 'cuda');
  if (hasGpu) {
    expect(resolveDevice('auto')).toMatch(/^cuda:\d+$/);
  } else {
    expect(typeof r.cudaUnavailableReason).toBe('string');
    expect(r.cudaUnavailableReason!.length).toBeGreaterThan(10);
    expect(resolveDevice('auto')).toBe('cpu');
  }
});
