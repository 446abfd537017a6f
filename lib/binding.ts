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

/** timeOpSync's result: milliseconds per timed launch, and the clock that measured them. */
export interface AddonOpTimes {
  clock: 'cuda-event' | 'host';
  cacheScrubbed: boolean;
  ms: Float64Array;
}

// ---- models (engine/model.*, engine/arch_*.cpp, native/model.cpp) ------------------------------------------
// Tensor names follow GGUF, without the '.weight' suffix; matrices are (out, in) row-major; a bias is NAME.bias.
//   llama: token_embd, blk.N.attn_norm, blk.N.attn_q, blk.N.attn_k, blk.N.attn_v (+ .bias each when qkvBias),
//          blk.N.attn_output, blk.N.ffn_norm, blk.N.ffn_gate (w1), blk.N.ffn_up (w3), blk.N.ffn_down (w2),
//          output_norm, output (absent when tied).
//   gpt2:  token_embd, position_embd (maxSeqLen, dim), and with .bias each: blk.N.attn_norm, blk.N.attn_qkv (3 dim,
//          dim), blk.N.attn_output, blk.N.ffn_norm, blk.N.ffn_up (hiddenDim, dim), blk.N.ffn_down, output_norm;
//          output (absent when tied). Hugging Face's Conv1D weights are (in, out): the loader transposes them.
//   bert:  token_embd, position_embd (maxSeqLen, dim), token_types (nTokenTypes, dim), token_embd_norm + .bias,
//          and with .bias each: blk.N.attn_q, blk.N.attn_k, blk.N.attn_v, blk.N.attn_output,
//          blk.N.attn_output_norm, blk.N.ffn_up, blk.N.ffn_down, blk.N.layer_output_norm. No LM head.
export type AddonRopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

/** An attention mask (engine/ops.h AttnMask): a query sees all of its sequence, itself and earlier tokens, or itself and later ones. */
export type AddonAttentionMaskMode = 'bidirectional' | 'causal' | 'anticausal';

/**
 * An encoder's output as the decoder reads it (engine/sequence.h EncoderMemory): each decoder layer's cross-attention
 * K/V of one encoded input, in its context's KV pool, shared by every request and sequence given it. Opaque; its
 * blocks return to the pool once it is released (or collected) and no request uses it any more.
 */
export interface AddonEncoderMemory { readonly __brand: 'AddonEncoderMemory' }

export interface AddonModelConfig {
  /**
   * A registered engine architecture (engine/arch_*.cpp; binding().architectures() lists them; lib/arch/ describes
   * each): 'llama' covers Llama 2/3, Mistral, Qwen2 (qkvBias); 'gpt2'; 'bert' (encoder: embed() instead of step()); 't5' (encoder-decoder: encode() then generate / step against the memory).
   */
  arch: string;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Positions the model was trained for; the cache holds at most maxContext <= this per sequence. */
  maxSeqLen: number;
  normEps: number;
  /** RoPE (llama only; ignored by gpt2 and bert, which have learned positions). */
  ropeTheta: number;
  ropeLayout: 'adjacent' | 'half';
  /** llama: frequency scaling of RoPE (Llama 3.1 'llama3', or 'linear'); absent = none. */
  ropeScaling?: AddonRopeScaling | null;
  /** llama: q/k/v projections have biases (Qwen2). */
  qkvBias?: boolean;
  /** bert: rows of the token type table (type_vocab_size). */
  nTokenTypes?: number;
  /** t5: relative position buckets (relative_attention_num_buckets) and the distance where the last begins. */
  relBuckets?: number;
  relMaxDistance?: number;
  /** t5: the FFN: 'relu' (T5 v1.0) or 'geglu_tanh' (v1.1 / Flan-T5 gated-gelu). */
  ffnActivation?: 'relu' | 'geglu_tanh';
  /** t5: the decoder's layers (nLayers counts the encoder's; num_decoder_layers). */
  nDecoderLayers?: number;
  /** t5: the id a decoder's generation starts from (decoder_start_token_id; the pad id in T5 checkpoints). */
  decoderStartTokenId?: number;
  /** t5: the decoder output is scaled by dim^-0.5 before the LM head (T5 v1.0's tied head; HF scale_decoder_outputs). */
  scaleDecoderOutputs?: boolean;
  /**
   * bert: each layer's attention mask, nLayers entries (DecBERT: causal or anti-causal layers); absent: every layer
   * bidirectional. Decoders take none (they attend causally).
   */
  attentionMaskModes?: AddonAttentionMaskMode[];
  /** llama, gpt2: the LM head is token_embd (else 'output'). Ignored by bert. */
  tiedEmbeddings: boolean;
  /** Compute and storage dtype on the device. */
  dtype: 'float32' | 'float16' | 'bfloat16';
  /**
   * Matrix weights kept as Q8_0 on the device (int8 values + float16 scales per 32) and multiplied by gemm_q8,
   * whatever `dtype`: their sources must be 'q8_0'. A fused group (q|k|v, gate|up) is Q8_0 only when all of it is
   * listed (else its q8_0 sources are dequantized to `dtype`); embeddings and norms are always dequantized.
   */
  q8Weights?: string[];
  device: string;
  /** Threads of the cpu backend's ops (ignored on other devices); 0 or absent: the physical cores. */
  threads?: number;
}

/** A tensor's bytes in a file: read off the JS thread, converted to the model dtype, uploaded. */
export interface AddonFileSource {
  path: string;
  offset: number;
  bytes: number;
  /** 'q8_0': GGUF Q8_0 blocks (f16 scale, 32 int8) along the innermost dimension; bytes = numel / 32 × 34. */
  dtype: 'float32' | 'float16' | 'bfloat16' | 'q8_0';
  /** The shape of the bytes as stored (the model's shape reversed when transpose). */
  shape: number[];
  /** A 2-D matrix stored (in, out), as Hugging Face's Conv1D: transposed on the host to the engine's (out, in). */
  transpose?: boolean;
}

/**
 * Random values made off the JS thread in host chunks and uploaded (benchmarks: no file, any size):
 * mean + std × U with U uniform of unit variance, a function of (seed, element index) only.
 */
export interface AddonRandomSource {
  random: { seed: number; std: number; mean?: number };
  shape: number[];
}

export type AddonTensorSource = AddonFileSource | AddonRandomSource;

// ---- contexts (engine/context.*, engine/scheduler.*, native/context.cpp) ----------------------------------------

/** A context's sizes; what is absent takes the engine's default (see AddonContext.config() for the resolved values). */
export interface AddonContextOptions {
  /** Sequences running at once (slots 0..maxBatch-1), the low-level API's included. */
  maxBatch: number;
  /** Positions per sequence (prompt + generated); default and at most the model's maxSeqLen. */
  maxContext?: number;
  /** Most tokens one step carries (>= maxBatch); sizes the workspace. */
  maxStepTokens: number;
  /** Most prompt tokens of one sequence per step (chunked prefill); default maxStepTokens. */
  prefillChunk?: number;
  /** KV cache size in tokens (rounded up to whole blocks of 16); or in bytes; default from memory. */
  kvCacheTokens?: number;
  kvCacheBytes?: number;
  /** Requests waiting for admission before submit() throws ERR_BUSY (default 1024). */
  maxQueued?: number;
  /** Share computed prompt blocks across requests (default true). */
  prefixCaching?: boolean;
  /** Decode steps read KV blocks shared by several sequences once for all of them (default true). */
  sharedPrefixAttention?: boolean;
  /** Decode steps recorded once per shape and replayed (default true; cuda and emu). */
  cudaGraphs?: boolean;
}

export interface AddonContextConfig {
  maxBatch: number;
  maxContext: number;
  maxStepTokens: number;
  prefillChunk: number;
  kvCacheTokens: number;
  kvCacheBytes: number;
  maxQueued: number;
  prefixCaching: boolean;
  sharedPrefixAttention: boolean;
  /** False where the device has no graphs (cpu) even when asked for. */
  cudaGraphs: boolean;
}

/** One prompt for the engine loop; its events come to the context's listener. */
export interface AddonGenerateRequest {
  /** Chosen by the caller: a positive safe integer, unique among its requests in flight. */
  id: number;
  prompt: Int32Array;
  /** Samples of this prompt: its pass runs once, then n sequences fork from it (sample j seeded seed + j). */
  n: number;
  temperature: number;
  topK: number;
  topP: number;
  /** Over the whole context, prompt included; 1 = off. */
  repetitionPenalty: number;
  /** Over the generated tokens only (OpenAI semantics), each in [-maxPenalty, maxPenalty]; absent = 0 (off). */
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed: bigint;
  maxNewTokens: number;
  /** A sampled id in this list ends its sequence (finish 'eos'; the token is reported). */
  stopIds: Int32Array;
  /** Report the logits each token was sampled from. */
  logits?: boolean;
  /** 0..maxTopLogprobs: report each token's raw log-probability and this many most likely ids (AddonEventBatch.raw); absent = off. */
  topLogprobs?: number;
  /** Encoder-decoder models (required there): the encoded input the prompt — the decoder's forced prefix — attends. */
  memory?: AddonEncoderMemory;
}

/** engine/sequence.h Finish */
export const enum AddonFinish { None = 0, Eos = 1, Length = 2, Abort = 3, Error = 4 }

export interface AddonContextStats {
  blocksTotal: number;
  blocksUsed: number;
  blocksCached: number;
  blockSize: number;
  /** Sequences in the running batch. */
  running: number;
  /** Sequences waiting: requests not admitted yet and preempted sequences. */
  waiting: number;
  steps: number;
  promptTokensComputed: number;
  promptTokensCached: number;
  generatedTokens: number;
  preemptions: number;
  prefixCacheHits: number;
  prefixCacheQueries: number;
  /** Decode tokens whose attention read the KV blocks they share with other sequences of their step once for the
   *  group (the shared-prefix path; see ContextOptions.sharedPrefixAttention). */
  sharedPrefixTokens: number;
  /** Key reads per layer that path saved: for each group and step, its shared keys × (its sequences − 1). */
  sharedPrefixKeysSaved: number;
  /** Encoder-decoder models: encoder memories alive in the pool. */
  encoderMemories: number;
  /** Cross-attention key reads per layer saved by decoding the sequences that share a memory together: for each
   *  decode step and memory read by k > 1 of its sequences, its length × (k − 1). */
  memoryKeysSaved: number;
  /** Encoder-decoder models: input tokens the encoder has read for generation (one pass per encoded input). */
  encoderTokens: number;
  /** Decode steps run by replaying a recorded device graph (see ContextOptions.cudaGraphs). */
  graphSteps: number;
  /** Device graphs recorded (one per decode-step shape seen twice; at most 32 kept per context). */
  graphsCaptured: number;
  /** Set when recording a decode step failed: the error; the context launches every step from the host since. */
  graphError?: string;
}

/**
 * Raw log-probabilities of a batch's token events (log-softmax of the LM head's logits: no temperature, no
 * penalties), for the requests that asked (topLogprobs): parallel to the events, the top lists packed back to back.
 */
export interface AddonRawLogprobs {
  /** Of each event's token; NaN for events of requests that did not ask. */
  logprob: Float64Array;
  /** (events + 1): event i's top entries are [topOffset[i], topOffset[i + 1]) of topIds / topLogprob (none when its
   *  request did not ask), descending log-probability, the lower id first on ties. */
  topOffset: Int32Array;
  topIds: Int32Array;
  topLogprob: Float64Array;
}

export interface AddonRequestDone {
  request: number;
  promptTokens: number;
  cachedTokens: number;
  /** From submit() to the request's first admission into the running batch (or to its end, if it never ran). */
  queueMs: number;
  error?: Error;
}

/** The events of one engine step: token events as parallel typed arrays, then the requests that ended. */
export interface AddonEventBatch {
  request: Float64Array;
  index: Int32Array;
  /** -1 with finish Abort / Error. */
  token: Int32Array;
  logprob: Float32Array;
  finish: Int32Array;
  /** Per event, when its request asked for logits. */
  logits?: Array<Float32Array | undefined>;
  /** When any event's request asked for topLogprobs. */
  raw?: AddonRawLogprobs;
  done: AddonRequestDone[];
  stats: AddonContextStats;
}

export interface AddonStepRequest {
  /** Slots taking part in this step, each started with startSequence. */
  slots: Int32Array;
  /** The new tokens of every slot, packed in slot order: counts[i] tokens for slots[i]. */
  tokens: Int32Array;
  counts: Int32Array;
  /** Sampling per slot. temperature 0 = greedy. */
  temperature: Float32Array;
  topK: Int32Array;
  topP: Float32Array;
  repetitionPenalty: Float32Array;
  /** Absent = 0 for every slot. A low-level sequence has no prompt: they count its whole context. */
  presencePenalty?: Float32Array;
  frequencyPenalty?: Float32Array;
  /** 'none' | 'last' (each slot's last position) | 'all' (every position of the step, for teacher forcing). */
  logits?: 'none' | 'last' | 'all';
}

export interface AddonStepResult {
  /** The token sampled after each slot's last new token. */
  tokens: Int32Array;
  logprobs: Float32Array;
  /** float32 (rows, vocab) when requested: rows = slots ('last') or total new tokens ('all'). */
  logits?: Float32Array;
}

export interface AddonEmbedRequest {
  /** The tokens of every sequence, packed: counts[i] tokens for sequence i. */
  tokens: Int32Array;
  counts: Int32Array;
  /** One token type per token (BERT segment ids); absent = all 0. */
  tokenTypes?: Int32Array;
  /** 'mean' over each sequence's final hidden states, or its first ('cls') one. */
  pooling: 'mean' | 'cls';
  /** L2-normalise each pooled vector. */
  normalize: boolean;
}

/** A model's weights on one device: loaded once, shared by its contexts. */
export interface AddonModel {
  loadTensor(name: string, source: AddonTensorSource): Promise<void>;
  /** Checks every tensor the config needs was loaded; builds derived state. */
  finalize(): Promise<void>;
  memory(): { weights: number };
  dispose(): void;
}

/** A KV pool, sequences and an engine loop over a model's weights. */
export interface AddonContext {
  /** Queues requests for the engine loop, together (all or none); throws ERR_INVALID_ARG / ERR_BUSY / ERR_DISPOSED at once. */
  submit(requests: AddonGenerateRequest[]): void;
  /** Ends a request (index absent or -1) or one of its samples at the next step boundary. */
  cancel(id: number, index?: number): void;
  stats(): AddonContextStats;
  config(): AddonContextConfig;
  // Low-level API: sequences driven directly, one forward pass per step() call (teacher forcing, tests).
  /** Starts a sequence in a free slot; seed drives its sampling RNG. Returns the slot. */
  startSequence(seed: bigint, memory?: AddonEncoderMemory): number;
  /** Frees a slot's KV blocks. */
  endSequence(slot: number): void;
  /** One forward pass over the new tokens of several sequences + sampling. Runs off the JS thread. */
  step(request: AddonStepRequest): Promise<AddonStepResult>;
  /** Encoders (bert): sentence embeddings, float32 (batch, dim). Uses free slots for one pass; runs off the JS thread. */
  embed(request: AddonEmbedRequest): Promise<Float32Array>;
  /**
   * Encoder-decoder models: one encoder pass over input (1..min(maxContext, maxStepTokens) ids), its cross-attention
   * K/V kept in the pool; runs off the JS thread, between two steps. Rejects with ERR_BUSY while the pool has no room.
   */
  encode(input: Int32Array): Promise<AddonEncoderMemory>;
  /** Drops this handle's reference to a memory now (idempotent); requests and sequences using it keep theirs. */
  releaseMemory(memory: AddonEncoderMemory): void;
  memory(): { weights: number; kvCache: number; workspace: number };
  /** Stops the loop (requests in flight end with ERR_DISPOSED) and frees the context's memory. */
  dispose(): Promise<void>;
}

/** The engine's bounds (engine/limits.h); lib/limits.ts reads them. */
export interface AddonLimits {
  maxDim: number;
  maxHiddenDim: number;
  maxLayers: number;
  maxHeads: number;
  minHeadDim: number;
  maxHeadDim: number;
  maxVocab: number;
  maxSeqLen: number;
  maxRelPosBuckets: number;
  maxTokenTypes: number;
  maxBatch: number;
  maxStepTokens: number;
  maxQueued: number;
  maxN: number;
  maxStopIds: number;
  maxTemperature: number;
  maxPenalty: number;
  maxRepetitionPenalty: number;
  maxTopLogprobs: number;
  maxThreads: number;
  kvBlockSize: number;
  /** Rows of the decode GEMM kernels (float16 / bfloat16; F32: float32): a step of at most that many tokens runs its
   *  norms and SwiGLU as GEMM prologues. */
  gemmDecodeMaxM: number;
  gemmDecodeMaxMF32: number;
}

export interface AddonBinding {
  AddonModel: new (config: AddonModelConfig) => AddonModel;
  AddonContext: new (model: AddonModel, options: AddonContextOptions, onEvents: (batch: AddonEventBatch) => void) => AddonContext;
  limits(): AddonLimits;
  architectures(): string[];
  AddonTensor: AddonTensorConstructor;
  /** cpuIsa: the fast cpu kernels' instruction set ('avx512' | 'avx2' | 'generic'); cpuThreads: their default thread count (physical cores). */
  devices(): { cudaCompiled: boolean; cudaUsable: boolean; reason: string | null; cuda: AddonCudaDevice[]; cpuIsa: string; cpuThreads: number };
  /** The emulator's thread order and the device it emulates; options not given take their defaults (forward
   *  order, sm_90's 132 SMs and 232448 bytes of shared memory per block). */
  setEmuOptions(options: { reverseOrder?: boolean; smCount?: number; maxSharedMemoryPerBlockOptin?: number; failNextCapture?: boolean }): void;
  emuSelfTestCases(): string[];
  /** EET_TEST_HOOKS=1 only: loses the device's CUDA context on purpose (the GPU suite's lost-context check). */
  injectCudaFault?(device: string): void;
  emuSelfTest(name: string): string;
  setErrorFactory(factory: (code: string, message: string) => Error): void;
  runOpSync(op: string, device: string, params: Record<string, unknown>): void;
  /** The attention decode split (engine/ops.h) for a shape: what the decode kernels launch. */
  attentionDecodeSplit(shape: { batch: number; nHeads: number; nKvHeads: number; maxCtxLen: number; smCount: number }): { chunkLen: number; nChunks: number; headsPerBlock: number };
  /** Device-to-device copy bandwidth (native/bench.cpp): 2 × bytes × iters / seconds, timed in C++. */
  benchCopyBandwidth(device: string, options: { bytes: number; iters: number }): { device: string; bytes: number; iters: number; seconds: number; bytesPerSecond: number };
  /** One op of runOpSync's, checked once, launched `warmup` (default 1) times, then `reps` times each timed alone
   *  (native/bench.cpp): device events on cuda ('cuda-event'), the host clock elsewhere ('host'); scrubCache: a fill
   *  larger than the L2 before each timed launch (cuda only; cacheScrubbed says whether it ran). */
  timeOpSync(op: string, device: string, params: Record<string, unknown>, options: { warmup?: number; reps: number; scrubCache?: boolean }): AddonOpTimes;
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
