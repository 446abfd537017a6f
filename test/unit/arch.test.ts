// The architecture descriptions (lib/arch/) against references nobody here wrote, and the invariants the loaders,
// inspect, the bench and the test builders rely on.
//
// Hugging Face: test/fixtures/hf-state-dicts.json holds what HF transformers itself saves for tiny llama, mistral,
// qwen2, gpt2 and bert models (config.json, every tensor's name and shape, num_parameters();
// test/fixtures/hf-state-dicts.py makes it). Each is written here as a folder of zero-filled safetensors and read
// by the real loader and `eet inspect`: every tensor a description lists must be found under its HF name with
// HF's shape (reversed for Conv1D), every parameter HF has must be one the description loads, and the parameter
// count must be HF's. GGUF names and keys are checked by llama.cpp reading the files the tests write
// (test/models/llamacpp.test.ts, gguf-llamacpp.test.ts); llama2.c's layout by stories260K's exact file size; the
// tensor lists by the engine itself (test/models/arch-engine.test.ts).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ARCHITECTURES, HF_MODEL_TYPES, GGUF_ARCHITECTURES, tensorList, parameterCount } from '../../lib/arch';
import { inspectModel } from '../../lib/cli/inspect';
import { writeSafetensors } from '../../lib/formats/safetensors-writer';
import { readHfModel } from '../../lib/loaders/hf';
import { readLlama2cCheckpoint } from '../../lib/loaders/llama2c';
import { archShapeVariants } from '../util/engine-helpers';
import { MODEL } from '../util/stories260k';

interface HfCase {
  name: string;
  /** HF's num_parameters(), when the engine loads every parameter of the class (null: a task head it ignores). */
  parameters: number | null;
  config: Record<string, unknown>;
  tensors: Array<[string, number[]]>;
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/hf-state-dicts.json'), 'utf8')) as { transformers: string; cases: HfCase[] };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eet-arch-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe(`Hugging Face transformers ${fixture.transformers} checkpoints`, () => {
  test('the fixture covers every model type the descriptions accept', () => {
    const covered = new Set(fixture.cases.map((c) => c.config.model_type));
    expect(HF_MODEL_TYPES.filter((mt) => !covered.has(mt))).toEqual([]);
  });

  test.each(fixture.cases.map((c) => [c.name, c] as const))('%s: every tensor found with HF\'s shape, nothing of HF\'s left over, HF\'s parameter count', async (name, c) => {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c.config));
    await writeSafetensors(path.join(dir, 'model.safetensors'), c.tensors.map(([n, shape]) => ({
      name: n, dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    })));
    const hf = await readHfModel(dir);
    const shapes = new Map(c.tensors);
    const used = new Set<string>();
    const loaded = new Map(hf.tensors.map((t) => [t.name, t.source]));
    for (const t of tensorList(hf.config)) {
      const hfName = t.hf.find((n) => shapes.has(n))!;
      used.add(hfName);
      const want = t.hfConv1D ? [...t.shape].reverse() : t.shape;
      expect([t.name, hfName, shapes.get(hfName)]).toEqual([t.name, hfName, want]);
      expect([t.name, loaded.get(t.name)?.transpose === true]).toEqual([t.name, t.hfConv1D === true]);
    }
    const unused = c.tensors.map(([n]) => n).filter((n) => !used.has(n));
    if (c.parameters !== null) {
      expect(unused).toEqual([]);
      expect((await inspectModel(dir)).parameters).toBe(c.parameters);
    } else {
      expect(unused.filter((n) => !n.startsWith('cls.'))).toEqual([]); // BertForMaskedLM's MLM head
    }
  });
});

describe('the llama2.c format', () => {
  test('its per-layer list is exactly the llama block (no tensor silently left out of the file layout)', async () => {
    const ckpt = await readLlama2cCheckpoint(MODEL);
    const desc = ARCHITECTURES.find((a) => a.llama2c)!;
    const block = desc.tensors(ckpt.config).block(0).map((t) => t.name.replace(/^blk\.0\./, ''));
    expect(desc.llama2c!.layers.map(([, n]) => n).sort()).toEqual(block.sort());
    // and the loader's tensors, laid out from the exact file size, are the description's list with its shapes
    const listed = tensorList(ckpt.config).map((t) => [t.name, t.shape]);
    expect(ckpt.tensors.map((t) => [t.name, t.source.shape]).sort()).toEqual(listed.sort());
    expect(parameterCount(ckpt.config)).toBe(ckpt.tensors.reduce((a, t) => a + t.source.bytes / 4, 0));
  });
});

describe('the registry', () => {
  test('one description per engine architecture, no GGUF name, model type or HF class claimed twice', () => {
    const arches = ARCHITECTURES.map((a) => a.arch);
    expect(new Set(arches).size).toBe(arches.length);
    expect(new Set(GGUF_ARCHITECTURES).size).toBe(GGUF_ARCHITECTURES.length);
    expect(new Set(HF_MODEL_TYPES).size).toBe(HF_MODEL_TYPES.length);
    const classes = ARCHITECTURES.flatMap((a) => Object.values(a.hf.modelTypes).flat());
    expect(new Set(classes).size).toBe(classes.length);
  });
});

const SHAPES = archShapeVariants();

describe.each(SHAPES.map((c) => [`${c.arch} (tied ${c.tiedEmbeddings}, qkvBias ${c.qkvBias ?? '-'})`, c] as const))('%s tensors', (_label, c) => {
  const list = tensorList(c);

  test('roles fit the shapes the loaders assume (Q8_0 and gemm only for 2-D matrices; vectors 1-D)', () => {
    for (const t of list) {
      const dims = t.role === 'matrix' || t.role === 'embedding' ? 2 : 1;
      expect([t.name, t.role, t.shape.length]).toEqual([t.name, t.role, dims]);
      expect(t.shape.every((d) => Number.isInteger(d) && d > 0)).toBe(true);
      // Transposed on load: 2-D only (GPT-2's Conv1D matrices, T5's (num_buckets, n_heads) position-bias table).
      if (t.hfConv1D) expect(t.shape.length).toBe(2);
    }
  });

  test('names are unique, biases follow their weight, blocks are blk.N.* and alike', () => {
    const names = list.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (const t of list.filter((x) => x.role === 'bias')) {
      const owner = list.find((x) => x.name === t.name.replace(/\.bias$/, ''))!;
      expect([t.name, t.shape]).toEqual([t.name, [owner.shape[0]]]);
    }
    const layout = ARCHITECTURES.find((a) => a.arch === c.arch)!.tensors(c);
    // T5's blocks are its encoder's, enc.blk.N.* (llama.cpp's t5 names).
    const pre = c.arch === 't5' || c.arch === 't5encoder' ? 'enc.' : '';
    const strip = (l: number) => layout.block(l).map((t) => [t.name.replace(`${pre}blk.${l}.`, ''), t.shape, t.role]);
    expect(layout.block(0).every((t) => t.name.startsWith(`${pre}blk.0.`))).toBe(true);
    expect(strip(1)).toEqual(strip(0));
    // Outside the blocks, only T5's relative-position table carries a block's name: layer 0 holds it for all layers.
    // The t5 decoder's blocks (dec.blk.N.*) follow the encoder's, each alike, with the decoder's table in layer 0.
    const outside = [...layout.before, ...layout.after];
    const decoder = outside.filter((t) => t.name.startsWith('dec.blk.') && t.name !== 'dec.blk.0.attn_rel_b');
    const dec = (l: number) => decoder.filter((t) => t.name.startsWith(`dec.blk.${l}.`)).map((t) => [t.name.replace(`dec.blk.${l}.`, ''), t.shape, t.role]);
    const nDec = c.arch === 't5' ? c.nDecoderLayers! : 0;
    for (let l = 1; l < nDec; l++) expect(dec(l)).toEqual(dec(0));
    expect(decoder.length).toBe(nDec * dec(0).length);
    const blockNamed = outside.filter((t) => /(^|\.)blk\./.test(t.name) && !decoder.includes(t)).map((t) => t.name);
    expect(blockNamed).toEqual(c.arch === 't5' ? ['enc.blk.0.attn_rel_b', 'dec.blk.0.attn_rel_b'] : c.arch === 't5encoder' ? ['enc.blk.0.attn_rel_b'] : []);
  });

  test('the head: an untied decoder has output (vocab × dim), a tied one and the encoders (bert, t5encoder) have none', () => {
    const out = list.find((t) => t.name === 'output');
    if (c.arch === 'bert' || c.arch === 't5encoder' || c.tiedEmbeddings) expect(out).toBeUndefined();
    else expect(out).toMatchObject({ shape: [c.vocabSize, c.dim], role: 'matrix' });
  });
});
