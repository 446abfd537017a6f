// T5 from GGUF (llama.cpp's `t5` layout: enc.blk.N.* / dec.blk.N.* tensors, t5.* keys, tokenizer.ggml.model 't5'):
// the HF fixture models (test/fixtures/hf-t5) restated as GGUF files here — their safetensors tensors under the
// GGUF names, their Unigram vocabulary as tokenizer.ggml.* with T5's token types — must tokenize as HF did and
// generate HF's greedy ids (reference.json, from transformers), for plain inputs and forced decoder prefixes (PiD).
// v1_0 (a tied head that HF scales by d_model^-0.5, as a GGUF without `output` reads) is also checked on its logits.
import * as fs from 'fs';
import * as path from 'path';
import { ggufMetadata, ggufTensorName } from '../../lib/arch/gguf';
import { gv, writeGGUF, type GGUFWriterTensor } from '../../lib/formats/gguf-writer';
import { readHfModel } from '../../lib/loaders/hf';
import { readGGUFModel } from '../../lib/loaders/gguf';
import { loadModel } from '../../lib/model';
import { relDiff } from '../util/engine-helpers';
import { removeTmp, tmpFile } from '../util/gguf-models';

const DIR = path.join(__dirname, '..', 'fixtures', 'hf-t5');
interface Input { inputIds: number[]; logits: number[][]; greedyIds: number[] }
const REF = JSON.parse(fs.readFileSync(path.join(DIR, 'reference.json'), 'utf8')) as {
  texts: string[]; models: Record<'v1_0' | 'v1_1', { inputs: Input[]; pid: Array<{ prompt: string; greedyIds: number[] }> }>;
};
afterAll(removeTmp);

/** The HF folder as a GGUF file, as llama.cpp's converter lays a T5 out. */
async function hfToGGUF(name: 'v1_0' | 'v1_1'): Promise<string> {
  const dir = path.join(DIR, name);
  const hf = await readHfModel(dir);
  const tensors: GGUFWriterTensor[] = hf.tensors.map(({ name: n, source: s }) => {
    const buf = fs.readFileSync(s.path).subarray(s.offset, s.offset + s.bytes);
    const raw = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    let data = raw, shape = s.shape;
    if (s.transpose) {  // (num_buckets, heads) → the engine's (heads, num_buckets)
      const [r, c] = s.shape;
      data = new Float32Array(r * c);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) data[j * r + i] = raw[i * c + j];
      shape = [c, r];
    }
    return { name: ggufTensorName(n), type: 'F32', shape, data };
  });
  const tok = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Array<[string, number]> } };
  const vocab = tok.model.vocab;
  const types = vocab.map(([p], i) => (i === 2 ? 2 : p === '<pad>' || p === '</s>' ? 3 : 1));  // unknown, control, normal
  const file = tmpFile('.gguf');
  await writeGGUF(file, {
    metadata: [
      ...ggufMetadata(hf.config, 't5'),
      ['general.name', gv.str(`hf-t5-${name}`)],
      ['tokenizer.ggml.model', gv.str('t5')],
      ['tokenizer.ggml.tokens', gv.arr('string', vocab.map(([p]) => p))],
      ['tokenizer.ggml.scores', gv.arr('float32', vocab.map(([, s]) => s))],
      ['tokenizer.ggml.token_type', gv.arr('int32', types)],
      ['tokenizer.ggml.eos_token_id', gv.u32(1)],
      ['tokenizer.ggml.unknown_token_id', gv.u32(2)],
      ['tokenizer.ggml.padding_token_id', gv.u32(0)],
      ['tokenizer.ggml.add_eos_token', gv.bool(true)],
    ],
    tensors,
  });
  return file;
}

describe.each(['cpu', 'emu'])('T5 GGUF on %s', (device) => {
  test.each(['v1_0', 'v1_1'] as const)('%s: config, tokenizer and greedy ids as HF\'s', async (name) => {
    const file = await hfToGGUF(name);
    const g = await readGGUFModel(file);
    const { config: want } = await readHfModel(path.join(DIR, name));
    // relMaxDistance: llama.cpp stores none (every T5 uses 128); scaleDecoderOutputs: a GGUF head is tied or not.
    expect(g.config).toMatchObject({ ...want, scaleDecoderOutputs: true });
    const model = await loadModel(file, { device, dtype: 'float32', maxBatch: 4 });
    try {
      const { inputs, pid } = REF.models[name];
      expect(REF.texts.map((t) => model.tokenizer.encode(t))).toEqual(inputs.map((x) => x.inputIds));
      const n = inputs[0].greedyIds.length - 1;
      const rs = await model.generate(REF.texts, { temperature: 0, ignoreEos: true, maxNewTokens: n, logits: name === 'v1_0' });
      expect(rs.map((r) => r.tokens)).toEqual(inputs.map((x) => x.greedyIds.slice(1)));
      if (name === 'v1_0') expect(relDiff(Array.from(rs[0].logits![0]), inputs[0].logits[0])).toBeLessThan(1e-5);
      const ps = await model.generate({ input: REF.texts[1], prompts: pid.map((p) => p.prompt) }, { temperature: 0, ignoreEos: true, maxNewTokens: pid[0].greedyIds.length });
      expect(ps.map((r) => r.tokens)).toEqual(pid.map((p) => p.greedyIds));
    } finally {
      await model.dispose();
    }
  });
});
