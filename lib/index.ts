// Public entry point.
export { tensor, empty, Tensor, DTYPES } from './tensor';
export type { DType, Device, TensorOptions } from './tensor';
export { devices, deviceReport, resolveDevice } from './devices';
export type { DeviceInfo, DeviceReport } from './devices';
export * from './errors';
export { loadModel, Model } from './model';
export { Context } from './context';
export { limits } from './limits';
export type {
  LoadModelOptions, LoadProgress, ModelConfig, ModelDType, ModelMemory, Tokenizer,
  GenerateOptions, GenerateResult, StreamEvent, FinishReason, Prompt, EmbedOptions, ChatMessage, ChatTemplateOptions,
  ContextOptions, ContextStats, SharedInput, SamplesOptions,
} from './model';
export type { TokenLogprob } from './generate/call';
export { HfTokenizer, loadHfTokenizer } from './tokenizers/hf';
export { readHfModel, parseHfConfig } from './loaders/hf';
export type { HfModel, HfConfig, HfModelType } from './loaders/hf';
export { Llama2cTokenizer, loadLlama2cTokenizer, parseLlama2cTokenizer } from './tokenizers/llama2c';
export { readLlama2cCheckpoint } from './loaders/llama2c';
export type { Llama2cCheckpoint, Llama2cHeader } from './loaders/llama2c';
export { createServer, eetPlugin, eetRoutes, ServingState } from './server';
export type { CreateServerOptions, EetPluginOptions, EetServer, EetRouteOptions } from './server';
