// Public entry point.
export { tensor, empty, Tensor, DTYPES } from './tensor';
export type { DType, Device, TensorOptions } from './tensor';
export { devices, deviceReport, resolveDevice } from './devices';
export type { DeviceInfo, DeviceReport } from './devices';
export * from './errors';
export { loadModel, Model } from './model';
export type {
  LoadModelOptions, LoadProgress, ModelConfig, ModelDType, ModelMemory, Tokenizer,
  GenerateOptions, GenerateResult, StreamEvent, FinishReason, Prompt,
} from './model';
export { Llama2cTokenizer, loadLlama2cTokenizer, parseLlama2cTokenizer } from './tokenizers/llama2c';
export { readLlama2cCheckpoint } from './loaders/llama2c';
export type { Llama2cCheckpoint, Llama2cHeader } from './loaders/llama2c';
