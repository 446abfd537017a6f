// Fuzz cases: (run seed, case index, format) → mutated model files on disk and the options to load them with. A case
// is a pure function of its key (its own Rng stream), so the parent can re-create a failing case's files without the
// child that ran it, and `--seed S --case I` replays one case alone.
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Rng } = require('./rng');
const G = require('./gguf');
const { mutateBytes, mutateJson, mutateJsonText, mutateTemplate, INT32, U64, FLOATS } = require('./mutate');
const { safetensors } = require('./seeds');

const FORMATS = ['llama2c', 'gguf', 'safetensors', 'hf'];
/** Stable per-format salt, so adding a format does not change the others' cases. */
const SALT = { llama2c: 11, gguf: 22, safetensors: 33, hf: 44 };

/** How many mutations a case stacks. */
const depth = (rng) => rng.weighted([[7, 1], [2, 2], [1, 3]]);

/** Replaces `file` with something that is not a regular file (item 3 of issue 11): a FIFO, /dev/zero, a folder. */
function special(rng, file) {
  fs.rmSync(file, { recursive: true, force: true });
  const kind = rng.pick(['fifo', 'devzero', 'dir', 'dangling']);
  if (kind === 'fifo') execFileSync('mkfifo', [file]);
  else if (kind === 'devzero') fs.symlinkSync('/dev/zero', file);
  else if (kind === 'dir') fs.mkdirSync(file);
  else fs.symlinkSync(path.join(path.dirname(file), 'no-such-file'), file);
  return `${path.basename(file)} replaced by ${kind}`;
}

// ---- llama2.c ------------------------------------------------------------------------------------------------------

const LLAMA2C_HEADER = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];

/** Header fields of a llama2.c tokenizer: max_token_length, then each piece's score and length (sampled). */
function tokenizerFields(buf) {
  const fields = [{ at: 0, width: 4, kind: 'header', what: 'max_token_length' }];
  for (let off = 4, id = 0; off + 8 <= buf.length; id++) {
    const len = buf.readInt32LE(off + 4);
    if (id < 8 || id % 37 === 0 || [32, 259, 260].includes(id)) {
      fields.push({ at: off + 4, width: 4, kind: 'length', what: `length of piece ${id}` });
    }
    if (len < 0 || off + 8 + len > buf.length) break;
    off += 8 + len;
  }
  return fields;
}

function llama2cCase(rng, seed, dir) {
  let model = Buffer.from(seed.model), tok = Buffer.from(seed.tokenizer);
  const desc = [];
  for (let i = depth(rng); i > 0; i--) {
    const target = rng.weighted([[4, 'header'], [4, 'weights'], [4, 'tokenizer'], [3, 'scores'], [1, 'tokenizer-space']]);
    if (target === 'header') {
      const f = rng.int(7);
      const v = rng.chance(0.7) ? rng.pick(INT32) : model.readInt32LE(4 * f) + rng.pick([-1, 1, 2, -2]);
      model.writeInt32LE(v | 0, 4 * f);
      desc.push(`model header ${LLAMA2C_HEADER[f]} = ${v | 0}`);
    } else if (target === 'weights') {
      const r = mutateBytes(rng, model, { floats: { start: 28, end: model.length, width: 4 } });
      model = r.buf;
      desc.push(`model: ${r.desc}`);
    } else if (target === 'tokenizer') {
      const r = mutateBytes(rng, tok, { fields: tokenizerFields(tok), floats: null });
      tok = r.buf;
      desc.push(`tokenizer: ${r.desc}`);
    } else if (target === 'scores') {
      // Scores that still parse (finite) but tie, sit at run.c's -1e10 floor or are huge: the merge order changes.
      const val = rng.pick([0, -1e10, -1e11, 1e30, -1e30, 3.4e38, -0.5, 1]);
      const n = rng.pick([1, 10, 100, 512]);
      let off = 4;
      for (let id = 0; off + 8 <= tok.length && id < 512; id++) {
        if (id % Math.max(1, Math.floor(512 / n)) === 0) tok.writeFloatLE(val, off);
        off += 8 + Math.max(0, tok.readInt32LE(off + 4));
      }
      desc.push(`tokenizer: ${n} scores set to ${val}`);
    } else {
      // The " " piece (the dummy prefix) renamed: the vocabulary no longer has it.
      const at = tok.indexOf(Buffer.from([1, 0, 0, 0, 0x20]));
      if (at >= 0) tok[at + 4] = 0x21;
      desc.push('tokenizer: the " " piece renamed to "!"');
    }
  }
  const modelFile = path.join(dir, 'model.bin'), tokFile = path.join(dir, 'tok512.bin');
  fs.writeFileSync(modelFile, model);
  fs.writeFileSync(tokFile, tok);
  const options = rng.chance(0.8) ? { tokenizer: tokFile } : {};
  if (rng.chance(0.04)) desc.push(special(rng, rng.chance(0.5) ? modelFile : tokFile));
  return { model: modelFile, options, desc };
}

// ---- GGUF ----------------------------------------------------------------------------------------------------------

function numberFor(rng, type) {
  if (type === 'float32' || type === 'float64') return rng.pick(FLOATS.concat([0.5, 1e-5, -1]));
  if (type === 'uint64' || type === 'int64') return rng.pick(U64);
  return rng.pick(INT32);
}

/** One structural edit of a GGUF file description (metadata or tensor infos). */
function ggufStructural(rng, f) {
  const op = rng.weighted([[6, 'value'], [2, 'type'], [2, 'delete'], [1, 'duplicate'], [2, 'array'], [2, 'tokens'], [1, 'template'],
    [3, 'dims'], [2, 'ggml'], [2, 'offset'], [1, 'tensor-name'], [1, 'drop-tensor'], [1, 'version'], [1, 'alignment'], [1, 'counts']]);
  const kv = rng.pick(f.metadata);
  const t = rng.pick(f.tensors);
  switch (op) {
    case 'value':
      if (kv.type === 'string') kv.value = rng.pick(['', 'x', 'llama', 'gpt2', 'bert', 'none', 'qwen2', kv.value + kv.value, '\u2581']);
      else if (kv.type === 'array') kv.value = kv.value.slice(0, rng.int(kv.value.length + 1));
      else kv.value = numberFor(rng, kv.type);
      return `metadata ${kv.key} = ${String(kv.type === 'array' ? `${kv.value.length} items` : kv.value).slice(0, 40)}`;
    case 'type': {
      const to = rng.pick(G.TYPES.concat(['bogus']));
      if (to === 'bogus') { kv.typeId = rng.pick([13, 100, 2 ** 31, 2 ** 32 - 1]); return `metadata ${kv.key} type id ${kv.typeId}`; }
      if (to === 'array') Object.assign(kv, { type: 'array', itemType: rng.pick(['uint32', 'string', 'float32']), value: [] });
      else Object.assign(kv, { type: to, value: to === 'string' ? String(kv.value).slice(0, 50) : to === 'bool' ? 1 : Number(Array.isArray(kv.value) ? kv.value.length : kv.value) || 0 });
      return `metadata ${kv.key} retyped ${to}`;
    }
    case 'delete':
      f.metadata.splice(f.metadata.indexOf(kv), 1);
      return `metadata ${kv.key} deleted`;
    case 'duplicate':
      f.metadata.push({ ...kv });
      return `metadata ${kv.key} duplicated`;
    case 'array': {
      const arrays = f.metadata.filter((m) => m.type === 'array');
      const a = rng.pick(arrays);
      const r = rng.int(4);
      if (r === 0) { a.count = rng.pick(U64); return `metadata ${a.key} count field ${a.count}`; }
      if (r === 1) { a.itemTypeId = rng.pick([9, 13, 255]); return `metadata ${a.key} item type id ${a.itemTypeId}`; }
      if (r === 2 && a.itemType !== 'string') { a.value = a.value.map((x, i) => (i % 7 === 0 ? numberFor(rng, a.itemType) : x)); return `metadata ${a.key} items set to interesting numbers`; }
      a.value = a.value.concat(a.value.slice(0, rng.int(a.value.length + 1)));
      return `metadata ${a.key} extended`;
    }
    case 'tokens': {
      const tokens = f.metadata.find((m) => m.key === 'tokenizer.ggml.tokens');
      if (!tokens) return 'no tokens to edit';
      const r = rng.int(4);
      if (r === 0) { tokens.value = tokens.value.map((s) => s.replace(/\u2581/g, '_')); return 'tokenizer: every "▁" replaced by "_"'; }
      if (r === 1) { tokens.value = tokens.value.map((s) => (s.startsWith('<0x') && rng.chance(0.1) ? 'X' : s)); return 'tokenizer: some byte pieces renamed'; }
      if (r === 2) { const i = rng.int(tokens.value.length); tokens.value[i] = rng.pick(['', '\ud800', 'x'.repeat(5000), tokens.value[0]]); return `tokenizer: token ${i} edited`; }
      const id = f.metadata.find((m) => m.key === rng.pick(['tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id']));
      if (id) id.value = rng.pick([300, 299, 2 ** 31, 2 ** 32 - 1, 65535]);
      return `tokenizer: ${id?.key} = ${id?.value}`;
    }
    case 'template': {
      const tm = f.metadata.find((m) => m.key === 'tokenizer.chat_template');
      const m = mutateTemplate(rng, tm?.value);
      if (tm) tm.value = m.template;
      return m.desc;
    }
    case 'dims': {
      const i = rng.int(t.dims.length + 1);
      if (i === t.dims.length) { t.dims = t.dims.concat([rng.pick([1, 2, 0])]); return `tensor ${t.name} gets another dim`; }
      t.dims[i] = rng.chance(0.5) ? rng.pick(U64) : BigInt(t.dims[i]) + BigInt(rng.pick([-1, 1, 32]));
      return `tensor ${t.name} dims[${i}] = ${t.dims[i]}`;
    }
    case 'ggml':
      t.ggml = rng.pick([0, 1, 8, 30, 2, 12, 39, 40, 1000]);
      return `tensor ${t.name} ggml type ${t.ggml}`;
    case 'offset':
      t.offset = rng.chance(0.5) ? rng.pick(U64) : BigInt(t.offset) + BigInt(rng.pick([-32, 32, 1, 4096]));
      return `tensor ${t.name} offset ${t.offset}`;
    case 'tensor-name':
      t.name = rng.pick(['', 'x'.repeat(100), f.tensors[0].name, 'blk.99.attn_q.weight', 'token_embd.weight', 'output.weight']);
      return `tensor renamed to ${t.name.slice(0, 30)}`;
    case 'drop-tensor':
      f.tensors.splice(f.tensors.indexOf(t), 1);
      return `tensor ${t.name} dropped`;
    case 'version':
      f.version = rng.pick([0, 1, 2, 4, 0x03000000]);
      return `version ${f.version}`;
    case 'alignment':
      f.metadata.push({ key: 'general.alignment', ...rng.pick([G.v.u32(0), G.v.u32(3), G.v.u32(2 ** 30), G.v.u32(64), G.v.str('32'), G.v.f32(32)]) });
      return 'general.alignment added';
    case 'counts':
      if (rng.chance(0.5)) f.kvCount = rng.pick(U64);
      else f.tensorCount = rng.pick(U64);
      return `counts: kv ${f.kvCount ?? f.metadata.length}, tensors ${f.tensorCount ?? f.tensors.length}`;
  }
  throw new Error(op);
}

function ggufCase(rng, seeds, dir) {
  const seed = rng.pick(seeds);
  const f = structuredClone(seed.file);
  const desc = [`seed ${seed.name}`];
  const n = depth(rng);
  let structural = 0;
  for (let i = 0; i < n; i++) if (rng.chance(0.6)) { desc.push(ggufStructural(rng, f)); structural++; }
  let { buf, fields, dataStart } = G.encode(f);
  for (let i = structural; i < n || (structural === 0 && i === 0); i++) {
    const width = seed.name.includes('f16') ? 2 : 4;
    const r = mutateBytes(rng, buf, { fields: fields.filter((x) => x.kind !== 'value' || rng.chance(0.1)), floats: { start: dataStart, end: buf.length, width } });
    buf = r.buf;
    desc.push(r.desc);
  }
  const file = path.join(dir, 'model.gguf');
  fs.writeFileSync(file, buf);
  if (rng.chance(0.03)) desc.push(special(rng, file));
  return { model: file, options: {}, desc };
}

// ---- Hugging Face folders (JSON files) and their safetensors ------------------------------------------------------

/** Writes a folder seed (after `edit` has changed its JSON and tensors); `texts` replaces a JSON file's text. */
function writeFolder(dir, files, tensors, { texts = {}, weights } = {}) {
  for (const [name, json] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), texts[name] ?? JSON.stringify(json));
  if (weights !== null) fs.writeFileSync(path.join(dir, 'model.safetensors'), weights ?? safetensors(tensors));
}

const JSON_FOCUS = {
  'config.json': null,
  'tokenizer.json': ['vocab', 'added_tokens', 'post_processor', 'merges', 'single', 'model', 'decoder', 'normalizer', 'pre_tokenizer', 'id', 'ids'],
  'tokenizer_config.json': null,
  'generation_config.json': null,
};

function hfCase(rng, seeds, dir) {
  const seed = rng.pick(seeds);
  const files = structuredClone(seed.files);
  const desc = [`seed ${seed.name}`];
  const texts = {};
  for (let i = depth(rng); i > 0; i--) {
    const name = rng.weighted([[4, 'config.json'], [4, 'tokenizer.json'], [2, 'tokenizer_config.json'], [1, 'generation_config.json']]);
    if (!files[name]) files[name] = {};
    const r = rng.int(10);
    if (name === 'tokenizer_config.json' && r < 4) {
      const m = mutateTemplate(rng, files[name].chat_template);
      files[name].chat_template = m.template;
      desc.push(m.desc);
    } else if (name === 'tokenizer.json' && r < 2) {
      desc.push(tokenizerSemantic(rng, files[name]));
    } else if (r === 9) {
      const m = mutateJsonText(rng, JSON.stringify(files[name]));
      texts[name] = m.text;
      desc.push(`${name}: ${m.desc}`);
    } else {
      const m = mutateJson(rng, files[name], { focus: JSON_FOCUS[name] });
      files[name] = m.value;
      desc.push(`${name}: ${m.desc}`);
    }
  }
  writeFolder(dir, files, seed.tensors, { texts });
  if (rng.chance(0.04)) desc.push(special(rng, path.join(dir, rng.pick(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']))));
  return { model: dir, options: {}, desc };
}

/** Edits issue 11 names: a vocab id of 1e9, a post-processor without `single`, added tokens past the vocabulary. */
function tokenizerSemantic(rng, tok) {
  const r = rng.int(4);
  if (r === 0) { const k = rng.pick(Object.keys(tok.model.vocab)); tok.model.vocab[k] = rng.pick([1e9, 48, -1, 2 ** 31, 1.5]); return `tokenizer.json: vocab[${k}] = ${tok.model.vocab[k]}`; }
  if (r === 1 && tok.post_processor) { delete tok.post_processor[rng.pick(['single', 'pair', 'special_tokens'])]; return 'tokenizer.json: post_processor field deleted'; }
  if (r === 2) { tok.added_tokens.push({ id: rng.pick([1e9, 47, 48, 30]), content: '<x>', special: true }); return 'tokenizer.json: added token past the vocabulary'; }
  tok.model.unk_token = null;
  return 'tokenizer.json: no unk_token';
}

function safetensorsCase(rng, seeds, dir) {
  const seed = rng.pick(seeds);
  const desc = [`seed ${seed.name}`];
  const header = {};
  let at = 0;
  for (const t of seed.tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape.slice(), data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  if (rng.chance(0.15)) return shardedCase(rng, seed, dir, desc);
  let weights;
  const r = rng.int(10);
  if (r < 5) {
    const names = Object.keys(header);
    const focus = rng.chance(0.5) ? ['dtype', 'shape', 'data_offsets'] : null;
    const m = mutateJson(rng, rng.chance(0.8) ? header : { ...header, __metadata__: { format: 'pt' } }, { focus });
    desc.push(`header: ${m.desc}`);
    weights = safetensors(seed.tensors, JSON.stringify(m.value));
    if (names.length === 0) desc.push('no tensors');
  } else if (r < 6) {
    const m = mutateJsonText(rng, JSON.stringify(header));
    desc.push(`header: ${m.desc}`);
    weights = safetensors(seed.tensors, m.text);
  } else {
    const base = safetensors(seed.tensors);
    const dataStart = 8 + Number(base.readBigUInt64LE(0));
    const m = mutateBytes(rng, base, { fields: [{ at: 0, width: 8, kind: 'length', what: 'header length' }], floats: { start: dataStart, end: base.length, width: 4 } });
    desc.push(m.desc);
    weights = m.buf;
  }
  writeFolder(dir, seed.files, seed.tensors, { weights });
  if (rng.chance(0.03)) desc.push(special(rng, path.join(dir, 'model.safetensors')));
  return { model: dir, options: {}, desc };
}

/** Two shards and an index, then one edit of the index or a shard's presence. */
function shardedCase(rng, seed, dir, desc) {
  const half = Math.ceil(seed.tensors.length / 2);
  const shards = [['model-00001-of-00002.safetensors', seed.tensors.slice(0, half)], ['model-00002-of-00002.safetensors', seed.tensors.slice(half)]];
  const index = { metadata: { total_size: 0 }, weight_map: {} };
  for (const [name, ts] of shards) {
    fs.writeFileSync(path.join(dir, name), safetensors(ts));
    for (const t of ts) index.weight_map[t.name] = name;
  }
  const r = rng.int(4);
  if (r === 0) { fs.rmSync(path.join(dir, shards[1][0])); desc.push('a shard is missing'); } else if (r === 1) {
    const k = rng.pick(Object.keys(index.weight_map));
    index.weight_map[k] = rng.pick(['../model.safetensors', '', '.', '/etc/passwd', 'config.json', 'model.safetensors.index.json']);
    desc.push(`weight_map[${k}] = ${index.weight_map[k]}`);
  } else {
    const m = mutateJson(rng, index, { focus: ['weight_map'] });
    Object.assign(index, m.value);
    desc.push(`index: ${m.desc}`);
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
  writeFolder(dir, seed.files, seed.tensors, { weights: null });
  return { model: dir, options: {}, desc: [...desc, 'sharded'] };
}

/** Seed `index` of `format` written unmutated: it must load and run (else every mutation of it tests nothing). */
function pristineCase(seeds, index, format, dir) {
  const list = format === 'llama2c' ? seeds.llama2c : format === 'gguf' ? seeds.gguf : seeds.hf;
  const seed = list[index % list.length];
  let model = dir;
  if (format === 'llama2c') {
    model = path.join(dir, 'model.bin');
    fs.writeFileSync(model, seed.model);
    fs.writeFileSync(path.join(dir, 'tok512.bin'), seed.tokenizer);
  } else if (format === 'gguf') {
    model = path.join(dir, 'model.gguf');
    fs.writeFileSync(model, G.encode(seed.file).buf);
  } else {
    writeFolder(dir, seed.files, seed.tensors);
  }
  return { model, options: {}, desc: [`seed ${seed.name ?? format}, unmutated`], device: 'cpu', sampling: 'topk-topp' };
}

/** How many seeds a format has (each is run unmutated before fuzzing). */
function seedCount(seeds, format) {
  return (format === 'llama2c' ? seeds.llama2c : format === 'gguf' ? seeds.gguf : seeds.hf).length;
}

/**
 * Writes case (seed, index) of `format` into `dir` (an empty folder) and returns { model, options, desc, device,
 * sampling }: the path to load, loadModel's extra options, what was mutated, and how the child should run it.
 */
function materialize(seeds, runSeed, index, format, dir, { pristine = false } = {}) {
  const rng = new Rng(runSeed, index, SALT[format]);
  if (pristine) return pristineCase(seeds, index, format, dir);
  const c = format === 'llama2c' ? llama2cCase(rng, seeds.llama2c[0], dir)
    : format === 'gguf' ? ggufCase(rng, seeds.gguf, dir)
      : format === 'safetensors' ? safetensorsCase(rng, seeds.hf, dir)
        : hfCase(rng, seeds.hf, dir);
  c.device = rng.chance(0.05) ? 'emu' : 'cpu';
  c.sampling = rng.pick(['greedy', 'topk-topp', 'temperature', 'penalties']);
  return c;
}

module.exports = { FORMATS, materialize, seedCount };
