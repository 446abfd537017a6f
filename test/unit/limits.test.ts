// One limits table (engine/limits.h, exported by the addon): TypeScript validates with the engine's numbers, and
// every loader checks a file's config against them before building anything from it — a hostile count fails at
// once with a coded error instead of driving allocations (a 2^31-layer config.json used to run 68 s into a V8
// out-of-memory abort).
import { binding } from '../../lib/binding';
import { UnsupportedError } from '../../lib/errors';
import { limits } from '../../lib/limits';
import { parseHfConfig } from '../../lib/loaders/hf';
import { gv } from '../../lib/formats/gguf-writer';
import { readGGUFModel } from '../../lib/loaders/gguf';
import { LLAMA_SPEC, removeTmp, tinyWeights, writeTinyGGUF } from '../util/gguf-models';

const LLAMA = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512, max_position_embeddings: 256, rms_norm_eps: 1e-5,
  rope_theta: 10000, tie_word_embeddings: true, hidden_act: 'silu',
};

test('the TypeScript limits are the engine\'s', () => {
  expect(limits()).toEqual(binding().limits());
  expect(limits()).toMatchObject({ maxBatch: 4096, maxHeadDim: 256, minHeadDim: 8, kvBlockSize: 16 });
});

test('config.json counts beyond the engine\'s bounds are refused before any tensor is listed', () => {
  const cases: Array<[Record<string, number>, RegExp]> = [
    [{ num_hidden_layers: 2147483647 }, /nLayers is 2147483647; the engine supports 1 to 4096/],
    [{ hidden_size: 32768, num_attention_heads: 64 }, /dim is 32768; the engine supports 1 to 16384/],
    [{ vocab_size: 2 ** 30 }, /vocabSize is 1073741824; the engine supports 1 to 16777216/],
    [{ hidden_size: 2048, num_attention_heads: 4, num_key_value_heads: 4 }, /headDim is 512; the engine supports 8 to 256/],
  ];
  for (const [over, message] of cases) {
    expect(() => parseHfConfig('config.json', { ...LLAMA, ...over })).toThrow(message);
    expect(() => parseHfConfig('config.json', { ...LLAMA, ...over })).toThrow(UnsupportedError);
  }
});

test('a GGUF block_count of 2^30 is refused from the metadata, not by building 2^30 layers', async () => {
  const { file } = await writeTinyGGUF(LLAMA_SPEC, tinyWeights(LLAMA_SPEC), { metadata: { 'llama.block_count': gv.u32(2 ** 30) } });
  await expect(readGGUFModel(file)).rejects.toThrow(/nLayers is 1073741824; the engine supports 1 to 4096/);
  removeTmp();
});
