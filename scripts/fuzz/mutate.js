// The fuzzer's mutation primitives: bytes (bit flips, interesting values at known header fields, NaN/Inf floats,
// truncation, extension, splices), JSON values (type confusions, huge and negative numbers, "NaN" strings, deleted
// and duplicated keys, deep nesting) and Jinja chat templates (loops that never end, output that explodes, syntax
// errors, random edits). Each returns a short description; a case's descriptions say how to read its files.
'use strict';

const INT32 = [0, 1, -1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 127, 128, 255, 256, 511, 512, 1023, 1024, 4096, 65535, 65536,
  2 ** 20, 2 ** 24, 2 ** 30, 2 ** 31 - 1, -(2 ** 31), -2, -(2 ** 30)];
const U64 = [0n, 1n, 2n, 7n, 8n, 31n, 32n, 255n, 2n ** 16n, 2n ** 20n, 2n ** 24n, 2n ** 30n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n,
  2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
const FLOATS = [NaN, Infinity, -Infinity, 0, -0, 1e-45, 1e-38, 1e38, -1e38, 3.4e38, 65504, -65504, 1e30];

/** An interesting integer for a field of `width` bytes near `current`. */
function interesting(rng, width, current) {
  const r = rng.int(4);
  if (r === 0) return BigInt(current) + BigInt(rng.pick([-1, 1, -8, 8, 32, -32]));
  if (r === 1) return BigInt(current) * BigInt(rng.pick([2, 16, 1024]));
  if (width === 8) return rng.pick(U64);
  return BigInt(rng.pick(INT32));
}

function writeInt(buf, at, width, value) {
  if (at + width > buf.length) return;
  if (width === 8) buf.writeBigUInt64LE(BigInt.asUintN(64, value), at);
  else if (width === 4) buf.writeUInt32LE(Number(BigInt.asUintN(32, value)), at);
  else if (width === 2) buf.writeUInt16LE(Number(BigInt.asUintN(16, value)), at);
  else buf.writeUInt8(Number(BigInt.asUintN(8, value)), at);
}

function readInt(buf, at, width) {
  if (at + width > buf.length) return 0n;
  if (width === 8) return buf.readBigUInt64LE(at);
  if (width === 4) return BigInt(buf.readUInt32LE(at));
  if (width === 2) return BigInt(buf.readUInt16LE(at));
  return BigInt(buf.readUInt8(at));
}

/**
 * One byte-level mutation of `buf` (a copy is returned). `fields` ([{ at, width, kind, what }]) aim at header fields;
 * `floats` ({ start, end, width: 4 | 2 }) is a region of float weights for NaN/Inf injection.
 */
function mutateBytes(rng, buf, { fields = [], floats = null } = {}) {
  let b = Buffer.from(buf);
  const ops = [[3, 'flip'], [2, 'bytes'], [2, 'truncate'], [1, 'extend'], [1, 'splice']];
  if (fields.length) ops.push([8, 'field']);
  if (floats && floats.end > floats.start) ops.push([3, 'nan']);
  const op = rng.weighted(ops);
  switch (op) {
    case 'flip': {
      const n = rng.range(1, 8);
      const at = [];
      for (let i = 0; i < n && b.length; i++) {
        const p = rng.chance(0.5) ? rng.int(Math.min(b.length, 4096)) : rng.int(b.length);
        b[p] ^= 1 << rng.int(8);
        at.push(p);
      }
      return { buf: b, desc: `flip bits at ${at.join(',')}` };
    }
    case 'bytes': {
      const p = b.length ? rng.int(b.length) : 0, n = rng.range(1, 16), val = rng.pick([0x00, 0xff, 0x7f, 0x80, -1]);
      for (let i = p; i < Math.min(b.length, p + n); i++) b[i] = val < 0 ? rng.int(256) : val;
      return { buf: b, desc: `set ${n} bytes at ${p} to ${val < 0 ? 'random' : val}` };
    }
    case 'truncate': {
      const at = rng.chance(0.5) ? rng.int(Math.min(b.length + 1, 512)) : rng.int(b.length + 1);
      return { buf: b.subarray(0, at), desc: `truncate to ${at} bytes` };
    }
    case 'extend': {
      const n = rng.pick([1, 4, 8, 31, 32, 100, 4096]);
      const extra = Buffer.alloc(n, rng.chance(0.5) ? 0 : rng.int(256));
      return { buf: Buffer.concat([b, extra]), desc: `append ${n} bytes` };
    }
    case 'splice': {
      const from = rng.int(b.length || 1), to = rng.int(b.length || 1), n = rng.range(1, 64);
      b.copy(b, to, from, Math.min(b.length, from + n));
      return { buf: b, desc: `copy ${n} bytes from ${from} to ${to}` };
    }
    case 'field': {
      const f = rng.pick(fields);
      const val = interesting(rng, f.width, readInt(b, f.at, f.width));
      writeInt(b, f.at, f.width, val);
      return { buf: b, desc: `set ${f.kind} field "${f.what}" (${f.width} bytes at ${f.at}) to ${BigInt.asUintN(8 * f.width, val)}` };
    }
    case 'nan': {
      const w = floats.width, n = rng.range(1, 4), at = [];
      const val = rng.pick(FLOATS);
      for (let i = 0; i < n; i++) {
        const p = floats.start + w * rng.int(Math.floor((floats.end - floats.start) / w));
        if (w === 4) b.writeFloatLE(val, p);
        else b.writeUInt16LE(Number.isNaN(val) ? 0x7e00 : val > 0 ? 0x7c00 : 0xfc00, p);
        at.push(p);
      }
      return { buf: b, desc: `write ${val} as float${8 * w} at ${at.join(',')}` };
    }
  }
  throw new Error(op);
}

// ---- JSON ----------------------------------------------------------------------------------------------------------

/** Values another value is replaced with: wrong types, huge, negative, fractional, NaN as text. */
const CONFUSIONS = [null, true, false, 0, -1, 1.5, 2 ** 31 - 1, 2 ** 31, 2 ** 53, 1e9, 1e308, -1e308, 1e-300, 'NaN', 'Infinity', '',
  '1', 'x'.repeat(300), [], [1, 2], [null], {}, { a: 1 }, [[[[[]]]]], 2147483647, -2147483648];

/** Paths of every value under `root` (arrays sampled: long ones would otherwise dominate). */
function paths(root) {
  const out = [];
  const walk = (v, p, depth) => {
    out.push(p);
    if (depth > 12 || v === null || typeof v !== 'object') return;
    const keys = Array.isArray(v) ? sampleIndices(v.length) : Object.keys(v);
    for (const k of keys) walk(v[k], [...p, k], depth + 1);
  };
  walk(root, [], 0);
  return out;
}

function sampleIndices(n) {
  if (n <= 8) return Array.from({ length: n }, (_, i) => i);
  return [0, 1, 2, Math.floor(n / 2), n - 2, n - 1];
}

function getAt(root, p) { return p.reduce((v, k) => (v === null || v === undefined ? undefined : v[k]), root); }

/** One JSON-level mutation of a clone of `obj`; returns { value, desc }. Leaves are favoured over containers. */
function mutateJson(rng, obj, { focus } = {}) {
  const root = JSON.parse(JSON.stringify(obj));
  let all = paths(root).filter((p) => p.length > 0);
  if (focus) {
    const f = all.filter((p) => focus.some((k) => p.includes(k)));
    if (f.length && rng.chance(0.7)) all = f;
  }
  if (all.length === 0) return { value: rng.pick(CONFUSIONS), desc: 'replace the document' };
  const leaves = all.filter((p) => { const v = getAt(root, p); return v === null || typeof v !== 'object'; });
  const p = rng.chance(0.75) && leaves.length ? rng.pick(leaves) : rng.pick(all);
  const parent = getAt(root, p.slice(0, -1));
  const key = p[p.length - 1];
  const cur = parent[key];
  const where = p.map(String).join('.').slice(0, 120);
  const op = rng.weighted([[6, 'confuse'], [3, 'number'], [2, 'delete'], [1, 'nest'], [1, 'grow'], [1, 'string']]);
  switch (op) {
    case 'confuse': {
      const v = rng.pick(CONFUSIONS);
      parent[key] = v;
      return { value: root, desc: `${where} = ${JSON.stringify(v).slice(0, 40)}` };
    }
    case 'number': {
      const v = typeof cur === 'number' ? rng.pick([cur + 1, cur - 1, -cur, cur * 1000, cur + 0.5, cur * 2 ** 20, 1e9 + cur]) : rng.pick(INT32);
      parent[key] = v;
      return { value: root, desc: `${where} = ${v}` };
    }
    case 'delete':
      if (Array.isArray(parent)) parent.splice(key, 1);
      else delete parent[key];
      return { value: root, desc: `delete ${where}` };
    case 'nest': {
      let v = cur;
      const depth = rng.pick([2, 50, 1000]);
      for (let i = 0; i < depth; i++) v = rng.chance(0.5) ? [v] : { x: v };
      parent[key] = v;
      return { value: root, desc: `${where} nested ${depth} deep` };
    }
    case 'grow': {
      const n = rng.pick([100, 10000, 200000]);
      parent[key] = Array.isArray(cur) ? Array.from({ length: n }, (_, i) => cur[i % Math.max(cur.length, 1)] ?? i) : Array.from({ length: n }, () => cur);
      return { value: root, desc: `${where} repeated ${n} times` };
    }
    case 'string': {
      const s = typeof cur === 'string' ? cur : JSON.stringify(cur) ?? '';
      const v = rng.pick([s + '\u0000', s.split('').reverse().join(''), '\ud800' + s, s.repeat(100), s.slice(1), s.toUpperCase()]);
      parent[key] = v;
      return { value: root, desc: `${where} string edit` };
    }
  }
  throw new Error(op);
}

/** JSON text edits the parser must reject or survive (duplicate keys, truncation, comments). */
function mutateJsonText(rng, text) {
  const op = rng.int(5);
  if (op === 0) { const at = rng.int(text.length + 1); return { text: text.slice(0, at), desc: `JSON text truncated to ${at} chars` }; }
  if (op === 4) return { text: '['.repeat(200000) + ']'.repeat(200000), desc: 'JSON text nested 200000 deep' };
  if (op === 1) return { text: text.replace('{', '{"dup": 1, "dup": 2, '), desc: 'duplicate key in JSON text' };
  if (op === 2) return { text: '\ufeff' + text, desc: 'BOM before JSON text' };
  const at = rng.int(text.length);
  return { text: text.slice(0, at) + rng.pick(['}', ']', ',', '"', '\\', '/* */', 'NaN']) + text.slice(at), desc: `JSON text edit at ${at}` };
}

// ---- chat templates ------------------------------------------------------------------------------------------------

const HOSTILE_TEMPLATES = [
  ['loop of 1e8', '{% for i in range(100000000) %}{% endfor %}x'],
  ['nested loops 1e4 x 1e4', '{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}'],
  ['1e6 lines of output', '{% for i in range(1000000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}'],
  ['string times 1e9', "{{ 'x' * 1000000000 }}"],
  ['recursive macro', '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}'],
  ['raise_exception', "{{ raise_exception('no') }}"],
  ['unclosed block', '{% for m in messages %}{{ m.content }}'],
  ['unknown filter', '{{ messages | nosuchfilter }}'],
  ['deep nesting', '{% if true %}'.repeat(3000) + 'x' + '{% endif %}'.repeat(3000)],
  ['huge literal', "{{ '" + 'y'.repeat(100000) + "' }}"],
  ['attribute of undefined', '{{ messages[5].content.nothing.more }}'],
  ['number ops', '{{ 1 / 0 }}{{ 10 ** 1000 }}'],
  ['namespace loop', '{% set ns = namespace(x=0) %}{% for i in range(50000000) %}{% set ns.x = ns.x + 1 %}{% endfor %}{{ ns.x }}'],
];

/** A hostile template, or a random edit of `seed`. */
function mutateTemplate(rng, seed) {
  if (rng.chance(0.6)) {
    const [name, t] = rng.pick(HOSTILE_TEMPLATES);
    return { template: t, desc: `chat template: ${name}` };
  }
  const s = typeof seed === 'string' ? seed : '';
  const at = rng.int(s.length + 1);
  const ins = rng.pick(['{%', '%}', '{{', '}}', '{# ', ' }}{{', '{% endfor %}', '|', '(', ')', "'", '"', '[', ']', '\u0000', '\ud800']);
  if (rng.chance(0.5)) return { template: s.slice(0, at) + ins + s.slice(at), desc: `chat template: insert ${JSON.stringify(ins)} at ${at}` };
  const n = rng.range(1, 10);
  return { template: s.slice(0, at) + s.slice(at + n), desc: `chat template: delete ${n} chars at ${at}` };
}

module.exports = { INT32, U64, FLOATS, mutateBytes, mutateJson, mutateJsonText, mutateTemplate, writeInt, readInt };
