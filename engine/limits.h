// The engine's bounds, defined once. The native config/request parsers and the engine's validation check against
// these; native/addon.cpp exports the table (binding().limits()) and lib/limits.ts reads it, so TypeScript
// validates with the same numbers and a value JS accepts is never rejected by C++ with another message.
//
// X(name, value, what): name as exported to JS (camelCase), value, and what it bounds (for messages and docs).
#pragma once
#include <cstdint>

#define EET_LIMITS(X)                                                                                     \
  X(maxDim, 16384, "model width (dim): the norm kernels fold rows up to this length")                     \
  X(maxHiddenDim, 1 << 20, "FFN width (hiddenDim)")                                                       \
  X(maxLayers, 4096, "layers (nLayers)")                                                                  \
  X(maxHeads, 4096, "attention heads (nHeads, nKvHeads)")                                                 \
  X(minHeadDim, 8, "smallest head size (headDim): the attention kernels' lower bound")                    \
  X(maxHeadDim, 256, "largest head size (headDim): the attention kernels' upper bound")                   \
  X(maxVocab, 1 << 24, "vocabulary size (vocabSize)")                                                     \
  X(maxSeqLen, 1 << 20, "positions per sequence (maxSeqLen, maxContext)")                                 \
  X(maxRelPosBuckets, 1024, "T5 relative position buckets (relative_attention_num_buckets)")              \
  X(maxTokenTypes, 1 << 16, "BERT token types (nTokenTypes)")                                             \
  X(maxBatch, 4096, "sequences running at once in a context (maxBatch)")                                  \
  X(maxStepTokens, 1 << 20, "tokens one forward step carries (maxStepTokens)")                            \
  X(maxQueued, 1 << 20, "requests waiting for admission in a context (maxQueued)")                        \
  X(maxN, 1024, "sequences generated from one prompt (n)")                                                \
  X(maxStopIds, 1024, "token ids that end a sequence (stopIds)")                                          \
  X(maxTemperature, 1000000, "sampling temperature")                                                      \
  X(maxPenalty, 2, "presence / frequency penalty magnitude (OpenAI's range)")                             \
  X(maxRepetitionPenalty, 100, "repetition penalty: at most this, at least its inverse (beyond, logits overflow)") \
  X(maxTopLogprobs, 20, "most likely ids reported per generated token (topLogprobs)")                     \
  X(maxThreads, 1024, "cpu backend threads (threads)")                                                   \
  X(kvBlockSize, 16, "tokens per KV cache block (not a bound: the paging granularity)")                   \
  X(gemmDecodeMaxM, 64, "rows of the decode GEMM kernels in float16 / bfloat16: steps up to this many tokens run their norms and SwiGLU as GEMM prologues (not a bound)") \
  X(gemmDecodeMaxMF32, 16, "the same in float32 (not a bound)")

namespace eet {

struct Limits {
#define EET_LIMIT_FIELD(name, value, what) static constexpr int64_t name = value;
  EET_LIMITS(EET_LIMIT_FIELD)
#undef EET_LIMIT_FIELD
};

}  // namespace eet
