// llama2.c checkpoints (the legacy "version 0" export that run.c reads). Only the 28-byte header is read
// here; the weights are read natively (AddonModel.loadTensor) from the offsets computed below.
//
// Header: 7 little-endian int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len.
// vocab_size > 0 means the classifier is tied to the token embedding; < 0 means a separate wcls follows.
// Then float32 tensors, each stacked over layers where it is per layer ([L, out, in], matrices row-major):
//   token_embedding [V, D], rms_att [L, D], wq [L, H*hs, D], wk [L, KV*hs, D], wv [L, KV*hs, D],
//   wo [L, D, H*hs], rms_ffn [L, D], w1 [L, F, D], w2 [L, D, F], w3 [L, F, D], rms_final [D],
//   freq_cis_real [S, hs/2], freq_cis_imag [S, hs/2] (legacy RoPE tables, skipped: RoPE is computed),
//   wcls [V, D] (only when vocab_size < 0).
// The file size must be exactly what that layout implies (run.c's memory_map_weights). The per-layer names and
// order, the shapes and the header → config mapping are the llama description's (lib/arch/llama.ts, the one
// description with a llama2c part).
import { checkConfigLimits } from '../limits';
import type { AddonFileSource } from '../binding';
import { ARCHITECTURES } from '../arch';
import type { Llama2cHeader, ModelFileConfig } from '../arch/types';
import { ModelFormatError } from '../errors';
import { openRegularFile, readExactly } from './files';

export const LLAMA2C_HEADER_BYTES = 28;
const INT32_MAX = 2 ** 31 - 1;
/** llama2.c's newer exports start with this magic ("ak42" little-endian); run.c does not read them. */
const LLAMA2C_V1_MAGIC = 0x616b3432;

export type { Llama2cHeader };

/** What the loader knows about a checkpoint: the model's shape and where each tensor's bytes are. */
export interface Llama2cCheckpoint {
  header: Llama2cHeader;
  /** The model config fields the file determines (the rest — dtype, device, batch, context — come from options). */
  config: ModelFileConfig;
  tensors: Array<{ name: string; source: AddonFileSource }>;
  fileBytes: number;
}

function fail(file: string, what: string): never {
  throw new ModelFormatError(`Invalid llama2.c checkpoint ${file}: ${what}`);
}

/** Validates the header fields (the 7 int32 as read) and returns them with the tied flag. */
export function parseLlama2cHeader(file: string, raw: Int32Array | number[]): Llama2cHeader {
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = Array.from(raw);
  if (dim === LLAMA2C_V1_MAGIC) {
    fail(file, 'it starts with the magic "ak42" of a newer llama2.c export (version 1/2); only the legacy version 0 export (run.c\'s format) is supported');
  }
  const positive: Array<[string, number]> = [
    ['dim', dim], ['hidden_dim', hiddenDim], ['n_layers', nLayers], ['n_heads', nHeads], ['n_kv_heads', nKvHeads], ['seq_len', seqLen],
  ];
  for (const [name, v] of positive) if (!(v >= 1 && v <= INT32_MAX)) fail(file, `header field ${name} is ${v}, expected a positive integer`);
  if (vocabRaw === 0 || vocabRaw === -(2 ** 31)) fail(file, `header field vocab_size is ${vocabRaw}, expected a non-zero integer (negative: untied classifier)`);
  if (dim % nHeads !== 0) fail(file, `n_heads (${nHeads}) does not divide dim (${dim})`);
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) fail(file, `n_kv_heads (${nKvHeads}) does not divide n_heads (${nHeads})`);
  const headDim = dim / nHeads;
  if (headDim % 2 !== 0) fail(file, `the head size dim/n_heads = ${headDim} is odd; RoPE rotates pairs`);
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocabRaw), seqLen, tied: vocabRaw > 0 };
}

/**
 * Lays the tensors out from a validated header and checks the file size (BigInt arithmetic: no overflow on
 * hostile headers). Tensor names follow GGUF (binding.ts).
 */
export function layoutLlama2c(file: string, h: Llama2cHeader, fileBytes: number): Llama2cCheckpoint {
  const desc = ARCHITECTURES.find((a) => a.llama2c !== undefined)!;
  const format = desc.llama2c!;
  const config = format.config(h);
  const layout = desc.tensors(config);
  const shapeOf = (name: string, among = [...layout.before, ...layout.after]): bigint[] => among.find((t) => t.name === name)!.shape.map(BigInt);
  const block0 = layout.block(0);
  const perLayer = format.layers.map(([, name]) => [name, shapeOf(`blk.0.${name}`, block0)] as const);
  const L = BigInt(h.nLayers), S = BigInt(h.seqLen);
  const hs = BigInt(h.dim / h.nHeads);
  const embd = shapeOf('token_embd'), finalNorm = shapeOf('output_norm');
  const numel = (shape: bigint[]): bigint => shape.reduce((a, b) => a * b, 1n);
  // File order: token_embd, then each per-layer tensor stacked over layers (in the description's llama2c order),
  // then rms_final, the two freq_cis tables, then wcls (token_embd's shape) when untied.
  let floats = numel(embd) + L * perLayer.reduce((a, [, s]) => a + numel(s), 0n) + numel(finalNorm) + S * hs + (h.tied ? 0n : numel(embd));
  const expected = BigInt(LLAMA2C_HEADER_BYTES) + 4n * floats;
  if (BigInt(fileBytes) !== expected) {
    const what = BigInt(fileBytes) < expected ? 'truncated' : 'longer than its header implies';
    fail(file, `${what}: the header (dim ${h.dim}, hidden_dim ${h.hiddenDim}, n_layers ${h.nLayers}, n_heads ${h.nHeads}, ` +
      `n_kv_heads ${h.nKvHeads}, vocab_size ${h.tied ? '' : '-'}${h.vocabSize}, seq_len ${h.seqLen}) implies ${expected} bytes ` +
      `(${h.tied ? 'tied classifier' : 'with a separate wcls'}, legacy freq_cis tables included) but the file has ${fileBytes}`);
  }  // The exact size check above already refuses a hostile header (BigInt: no overflow); then the engine's bounds.
  checkConfigLimits(file, config);

  floats = 0n; // reused as the running offset (in floats) from the end of the header
  const tensors: Llama2cCheckpoint['tensors'] = [];
  const add = (name: string, shape: bigint[], at: bigint): void => {
    tensors.push({
      name,
      source: { path: file, offset: Number(BigInt(LLAMA2C_HEADER_BYTES) + 4n * at), bytes: Number(4n * numel(shape)), dtype: 'float32', shape: shape.map(Number) },
    });
  };
  add('token_embd', embd, floats);
  floats += numel(embd);
  for (const [name, shape] of perLayer) {
    const n = numel(shape);
    for (let l = 0n; l < L; l++) add(`blk.${l}.${name}`, shape, floats + l * n);
    floats += L * n;
  }
  add('output_norm', finalNorm, floats);
  floats += numel(finalNorm) + S * hs; // rms_final, then freq_cis_real and freq_cis_imag (S × hs/2 each)
  if (!h.tied) add('output', shapeOf('output'), floats);
  return { header: h, config, tensors, fileBytes };
}

/** Reads and validates a checkpoint's header; returns the config and the tensor sources. */
export async function readLlama2cCheckpoint(file: string, signal?: AbortSignal): Promise<Llama2cCheckpoint> {
  const { fh, size } = await openRegularFile(file, 'model');
  try {
    if (size < LLAMA2C_HEADER_BYTES) fail(file, `truncated: ${size} bytes, fewer than the ${LLAMA2C_HEADER_BYTES}-byte header`);
    const buf = await readExactly(fh, file, 'model', 0, LLAMA2C_HEADER_BYTES, signal);
    const raw = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(4 * i));
    return layoutLlama2c(file, parseLlama2cHeader(file, raw), size);
  } finally {
    await fh.close();
  }
}
