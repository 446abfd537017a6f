// GGUF's side of the descriptions that is the same for every architecture: tensor names (the engine's names are
// GGUF's minus '.weight'), and the `<arch>.*` keys every architecture stores alike (llama.cpp's LLM_KV_* names):
// context_length, embedding_length, block_count, feed_forward_length, attention.head_count, attention.head_count_kv
// (default head_count), attention.key_length / value_length (must be the head size), the vocabulary from
// token_embd's rows and the head from output's presence. Each description reads and writes the rest.
import { InvalidArgumentError } from '../errors';
import { gv } from '../formats/gguf-writer';
import type { GGUFValue } from '../formats/gguf';
import { archForGGUF } from './index';
import type { GGUFCommonConfig, GGUFConfigReader, ModelFileConfig } from './types';

/** The engine's name of a GGUF tensor name: 'blk.0.attn_q.weight' → 'blk.0.attn_q'; biases keep '.bias'. */
export function engineTensorName(name: string): string {
  return name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
}

/** The GGUF name of an engine tensor name: 'blk.0.attn_q' → 'blk.0.attn_q.weight'; biases keep '.bias'. */
export function ggufTensorName(name: string): string {
  return name.endsWith('.bias') ? name : `${name}.weight`;
}

/**
 * Reads the common keys; the order of the checks decides which error a file with several problems gets. With
 * ownHeadDim (t5: d_kv need not be embedding_length / head_count), the head size is attention.key_length.
 */
export function ggufCommonConfig(r: GGUFConfigReader, ownHeadDim = false): GGUFCommonConfig {
  const a = r.name;
  const embd = r.tensorShape('token_embd');
  if (!embd) r.invalid('tensor "token_embd.weight" is missing');
  if (embd.length !== 2) r.invalid(`tensor "token_embd.weight" has shape [${embd.join(', ')}], expected 2 dimensions`);
  const dim = r.int('embedding_length');
  const nHeads = r.int('attention.head_count');
  const nKvHeads = r.int('attention.head_count_kv', nHeads);
  if (!ownHeadDim && dim % nHeads !== 0) r.invalid(`${a}.attention.head_count (${nHeads}) does not divide ${a}.embedding_length (${dim})`);
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) {
    r.invalid(`${a}.attention.head_count_kv (${nKvHeads}) does not divide ${a}.attention.head_count (${nHeads})`);
  }
  const headDim = ownHeadDim ? r.int('attention.key_length') : dim / nHeads;
  for (const k of ['key_length', 'value_length']) {
    const v = r.int(`attention.${k}`, headDim);
    const what = ownHeadDim ? 'attention.key_length' : 'embedding_length / head_count';
    if (v !== headDim) r.unsupported(`${a}.attention.${k} = ${v} differs from ${what} = ${headDim}`);
  }
  return {
    dim,
    hiddenDim: r.int('feed_forward_length'),
    nLayers: r.int('block_count'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: embd[0],
    maxSeqLen: r.int('context_length'),
    tiedEmbeddings: r.tensorShape('output') === undefined,
  };
}

/**
 * general.architecture and the `<name>.*` keys of a config (the tensors carry the vocabulary and the head), as
 * llama.cpp's converter writes them: what a GGUF writer needs besides the tokenizer and the tensors.
 */
export function ggufMetadata(c: ModelFileConfig, name: string): Array<[string, GGUFValue]> {
  const desc = archForGGUF(name);
  if (!desc || desc.arch !== c.arch) throw new InvalidArgumentError(`Expected a GGUF architecture of the engine's ${c.arch} but received "${name}"`);
  return [
    ['general.architecture', gv.str(name)],
    [`${name}.context_length`, gv.u32(c.maxSeqLen)],
    [`${name}.embedding_length`, gv.u32(c.dim)],
    [`${name}.block_count`, gv.u32(c.nLayers)],
    [`${name}.feed_forward_length`, gv.u32(c.hiddenDim)],
    [`${name}.attention.head_count`, gv.u32(c.nHeads)],
    [`${name}.attention.head_count_kv`, gv.u32(c.nKvHeads)],
    ...desc.gguf.metadata(c, name),
  ];
}
