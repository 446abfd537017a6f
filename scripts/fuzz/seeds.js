// The fuzzer's seeds: small valid models in every format the loader reads, which mutations then break.
//   llama2c     stories260K (../shared/models/stories260K, read in place, never copied into the repository)
//   gguf        tiny random llama (SentencePiece vocabulary), gpt2 (byte-level BPE, F16), qwen2 (Q8_0, tied)
//   hf          tiny random Hugging Face folders: llama (Metaspace BPE + chat template), gpt2 (Conv1D), bert (WordPiece)
// Seeds are plain data (GGUF as scripts/fuzz/gguf.js structures, HF folders as JSON + tensors) so mutations can work
// on structure; materialize() writes one to disk. Tensor lists and GGUF keys come from the architecture descriptions
// (dist/arch), as the tests' builders do.
'use strict';

const fs = require('fs');
const path = require('path');
const { Rng } = require('./rng');
const G = require('./gguf');

const DIST = path.resolve(__dirname, '../../dist');
const { tensorList } = require(path.join(DIST, 'arch'));
const { ggufMetadata, ggufTensorName } = require(path.join(DIST, 'arch/gguf'));

/** ../shared/models/stories260K beside the repository (or further up, as test/util/stories260k.ts looks). */
function storiesDir() {
  const rel = path.join('shared', 'models', 'stories260K');
  for (let dir = path.resolve(__dirname, '../..'); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, rel, 'stories260K.bin'))) return path.join(dir, rel);
    if (path.dirname(dir) === dir) throw new Error('stories260K not found: expected ../shared/models/stories260K beside the repository');
  }
}

/** Random weights for every tensor of a config: norms 1, the rest N(0, 0.05²). */
function weights(config, seed) {
  const rng = new Rng(seed);
  return tensorList(config).map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = t.role === 'norm' ? 1 : 0.05 * rng.normal();
    return { spec: t, data };
  });
}

/** SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte pieces, then ▁-words and letters. */
function spmVocab(size) {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) { tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`); types.push(6); }
  const words = ['▁', 'e', 't', 'a', 'o', 'n', 'i', 's', 'h', 'r', '▁t', '▁a', 'he', '▁the', 'in', 'an', '▁s', 'on', 'er', '▁o', 'nd', '▁w', 'ha', 'ou', 'en', 'is', '▁h', 'l', 'd', 'c', 'u', 'm', 'w', 'f', 'g', 'y', 'p', 'b', 'v', 'k'];
  for (let i = 0; tokens.length < size; i++) { tokens.push(i < words.length ? words[i] : `▁w${i}`); types.push(1); }
  return { tokens, scores: tokens.map((_, i) => (types[i] === 1 ? -i : 0)), types };
}

/** GPT-2's bytes_to_unicode characters in byte order. */
function byteChars() {
  const out = [];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out.push(String.fromCharCode(printable ? b : 256 + n++));
  }
  return out;
}

/** Byte-level BPE vocabulary of `size` tokens: bytes, merges, <|endoftext|> last. */
function bpeVocab(size) {
  const tokens = byteChars();
  const merges = [];
  const letters = 'etaoinshrdlcumwfgypbvk';
  const firsts = ['Ġ', ...letters];
  for (let i = 0; tokens.length < size - 1; i++) {
    const a = firsts[Math.floor(i / letters.length) % firsts.length], b = letters[i % letters.length];
    merges.push(`${a} ${b}`);
    tokens.push(a + b);
  }
  tokens.push('<|endoftext|>');
  return { tokens, merges, types: tokens.map((_, i) => (i === tokens.length - 1 ? 3 : 1)) };
}

const LLAMA = { arch: 'llama', dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: 300, maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'adjacent', tiedEmbeddings: false };
const GPT2 = { arch: 'gpt2', dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: 8, vocabSize: 300, maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'adjacent', tiedEmbeddings: false };
const QWEN2 = { ...LLAMA, dim: 64, hiddenDim: 64, nLayers: 1, headDim: 16, ropeLayout: 'half', tiedEmbeddings: true, qkvBias: true };

/** A GGUF seed as scripts/fuzz/gguf.js data. */
function ggufSeed(name, config, ggufName, tokenizer, type, seed) {
  const metadata = ggufMetadata(config, ggufName).map(([key, val]) => ({ key, ...val }));
  metadata.push({ key: 'general.name', ...G.v.str(`fuzz-${name}`) });
  metadata.push(...tokenizer);
  const ts = weights(config, seed).map(({ spec, data }) => {
    const t = type === 'F32' || spec.shape.length < 2 || (type === 'Q8_0' && spec.role !== 'matrix') ? 'F32' : type;
    return { name: ggufTensorName(spec.name), shape: spec.shape, type: t, bytes: G.tensorBytes(t, data) };
  });
  const { tensors, data } = G.layout(ts);
  return { kind: 'gguf', name, file: { version: 3, metadata, tensors, alignment: 32, data } };
}

function spmMetadata(size, template) {
  const s = spmVocab(size);
  return [
    { key: 'tokenizer.ggml.model', ...G.v.str('llama') },
    { key: 'tokenizer.ggml.tokens', ...G.v.arr('string', s.tokens) },
    { key: 'tokenizer.ggml.scores', ...G.v.arr('float32', s.scores) },
    { key: 'tokenizer.ggml.token_type', ...G.v.arr('int32', s.types) },
    { key: 'tokenizer.ggml.bos_token_id', ...G.v.u32(1) },
    { key: 'tokenizer.ggml.eos_token_id', ...G.v.u32(2) },
    { key: 'tokenizer.chat_template', ...G.v.str(template) },
  ];
}

function bpeMetadata(size) {
  const b = bpeVocab(size);
  return [
    { key: 'tokenizer.ggml.model', ...G.v.str('gpt2') },
    { key: 'tokenizer.ggml.pre', ...G.v.str('gpt-2') },
    { key: 'tokenizer.ggml.tokens', ...G.v.arr('string', b.tokens) },
    { key: 'tokenizer.ggml.merges', ...G.v.arr('string', b.merges) },
    { key: 'tokenizer.ggml.token_type', ...G.v.arr('int32', b.types) },
    { key: 'tokenizer.ggml.bos_token_id', ...G.v.u32(size - 1) },
    { key: 'tokenizer.ggml.eos_token_id', ...G.v.u32(size - 1) },
  ];
}

const CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** A Metaspace BPE tokenizer.json (Llama-style) of `size` ids. */
function hfBpeTokenizer(size) {
  const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2, '<|user|>': 3, '<|assistant|>': 4, '▁': 5 };
  for (const c of 'abcdefghijklmnopqrstuvwxyz') vocab[c] = Object.keys(vocab).length;
  const merges = [['▁', 'h'], ['e', 'l'], ['el', 'l'], ['▁h', 'ell'], ['▁hell', 'o'], ['▁', 'w'], ['o', 'r'], ['▁w', 'or']];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  while (Object.keys(vocab).length < size) vocab[`<f${Object.keys(vocab).length}>`] = Object.keys(vocab).length;
  const meta = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>'), special(3, '<|user|>'), special(4, '<|assistant|>')],
    normalizer: null,
    pre_tokenizer: meta,
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
    decoder: meta,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
}

function hfWordPieceTokenizer(size) {
  const words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'on', 'mat', 'a', 'dog', 'ran', '##s', 'hello', 'world', '.'];
  const vocab = {};
  words.forEach((w, i) => (vocab[w] = i));
  while (Object.keys(vocab).length < size) vocab[`[unused${Object.keys(vocab).length}]`] = Object.keys(vocab).length;
  return {
    version: '1.0',
    added_tokens: [0, 1, 2, 3, 4].map((i) => special(i, words[i])),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** A Hugging Face folder seed: JSON files and safetensors tensors (F32; Conv1D weights stored transposed). */
function hfSeed(name, config, json, tokenizer, tokenizerConfig, generationConfig, seed) {
  const tensors = weights(config, seed).map(({ spec, data }) => {
    const shape = spec.hfConv1D ? [spec.shape[1], spec.shape[0]] : spec.shape;
    return { name: spec.hf[0], dtype: 'F32', shape, bytes: Buffer.from(data.buffer) };
  });
  return { kind: 'hf', name, files: { 'config.json': json, 'tokenizer.json': tokenizer, 'tokenizer_config.json': tokenizerConfig, ...(generationConfig ? { 'generation_config.json': generationConfig } : {}) }, tensors };
}

/** Every seed, by format. */
function buildSeeds() {
  const dir = storiesDir();
  const hfLlama = { ...LLAMA, vocabSize: 48, nLayers: 1 };
  const hfGpt2 = { ...GPT2, vocabSize: 48 };
  const hfBert = { arch: 'bert', dim: 32, hiddenDim: 48, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: 8, vocabSize: 30, maxSeqLen: 24, normEps: 1e-12, ropeTheta: 10000, ropeLayout: 'adjacent', tiedEmbeddings: false, nTokenTypes: 2 };
  const tokConfig = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, chat_template: CHAT_TEMPLATE };
  return {
    llama2c: [{ kind: 'llama2c', name: 'stories260K', model: fs.readFileSync(path.join(dir, 'stories260K.bin')), tokenizer: fs.readFileSync(path.join(dir, 'tok512.bin')) }],
    gguf: [
      ggufSeed('llama-spm', LLAMA, 'llama', spmMetadata(300, '{% for m in messages %}{{ m.content }}{% endfor %}'), 'F32', 1),
      ggufSeed('gpt2-bpe-f16', GPT2, 'gpt2', bpeMetadata(300), 'F16', 2),
      ggufSeed('qwen2-q8', QWEN2, 'qwen2', spmMetadata(300, CHAT_TEMPLATE), 'Q8_0', 3),
    ],
    hf: [
      hfSeed('hf-llama', hfLlama, {
        architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4,
        num_key_value_heads: 2, vocab_size: 48, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
        rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
        torch_dtype: 'float32', bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu',
      }, hfBpeTokenizer(48), tokConfig, { eos_token_id: [2, 4] }, 4),
      hfSeed('hf-gpt2', hfGpt2, {
        architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: 32, n_inner: 64, n_layer: 1, n_head: 4, vocab_size: 48, n_positions: 64,
        layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
      }, hfBpeTokenizer(48), { eos_token: '</s>', chat_template: CHAT_TEMPLATE }, null, 5),
      hfSeed('hf-bert', hfBert, {
        architectures: ['BertModel'], model_type: 'bert', hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4,
        vocab_size: 30, max_position_embeddings: 24, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu',
      }, hfWordPieceTokenizer(30), { cls_token: '[CLS]', sep_token: '[SEP]' }, null, 6),
    ],
  };
}

/** A safetensors file from tensors ({ name, dtype, shape, bytes }) or from a header text and data as given. */
function safetensors(tensors, header) {
  let text = header;
  let data;
  if (text === undefined) {
    const h = {};
    let at = 0;
    for (const t of tensors) {
      h[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
      at += t.bytes.length;
    }
    text = JSON.stringify(h);
  }
  data = Buffer.concat(tensors.map((t) => t.bytes));
  const pad = (8 - (Buffer.byteLength(text) % 8)) % 8;
  const hb = Buffer.from(text + ' '.repeat(pad), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  return Buffer.concat([len, hb, data]);
}

module.exports = { buildSeeds, safetensors, storiesDir, CHAT_TEMPLATE };
