// Public entry point.
export { tensor, empty, Tensor, DTYPES } from './tensor';
export type { DType, Device, TensorOptions } from './tensor';
export { devices, deviceReport, resolveDevice } from './devices';
export type { DeviceInfo, DeviceReport } from './devices';
export * from './errors';
