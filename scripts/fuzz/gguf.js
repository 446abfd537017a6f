// GGUF for the fuzzer: a file as plain data (metadata entries, tensor infos, the data section) and an encoder that
// writes exactly what it is given — duplicate keys, unknown value types, offsets past the end, dims that overflow —
// which the library's writer (rightly) refuses to. The encoder also returns where each header field landed, so
// binary mutations can aim at counts, lengths, types, dims and offsets instead of only flipping random bytes.
'use strict';

const TYPES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'];
const SIZES = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, bool: 1, uint64: 8, int64: 8, float64: 8 };
const GGML = { F32: { id: 0, block: 1, bytes: 4 }, F16: { id: 1, block: 1, bytes: 2 }, Q8_0: { id: 8, block: 32, bytes: 34 }, BF16: { id: 30, block: 1, bytes: 2 } };

const v = {
  u32: (value) => ({ type: 'uint32', value }),
  i32: (value) => ({ type: 'int32', value }),
  f32: (value) => ({ type: 'float32', value }),
  str: (value) => ({ type: 'string', value }),
  bool: (value) => ({ type: 'bool', value }),
  arr: (itemType, value) => ({ type: 'array', itemType, value: Array.from(value) }),
};

class Sink {
  constructor() { this.parts = []; this.length = 0; this.fields = []; }
  bytes(b) { this.parts.push(b instanceof Uint8Array ? b : Buffer.from(b)); this.length += this.parts[this.parts.length - 1].byteLength; }
  /** Writes an integer field of `width` bytes (BigInt-safe) and records it under `kind`. */
  int(width, value, kind, what) {
    const b = Buffer.alloc(width);
    if (width === 8) b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)));
    else if (width === 4) b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(value))));
    else b.writeUIntLE(Number(value) & (2 ** (8 * width) - 1), 0, width);
    if (kind) this.fields.push({ at: this.length, width, kind, what });
    this.bytes(b);
  }
  string(s, what) {
    const b = Buffer.from(s, 'utf8');
    this.int(8, b.length, 'length', what);
    this.bytes(b);
  }
  pad(alignment) { this.bytes(Buffer.alloc((alignment - (this.length % alignment)) % alignment)); }
}

function scalar(s, type, value, what) {
  const b = Buffer.alloc(SIZES[type]);
  switch (type) {
    case 'uint8': b.writeUInt8(Number(value) & 0xff); break;
    case 'int8': b.writeInt8(((Number(value) + 128) & 0xff) - 128); break;
    case 'uint16': b.writeUInt16LE(Number(value) & 0xffff); break;
    case 'int16': b.writeInt16LE(((Number(value) + 32768) & 0xffff) - 32768); break;
    case 'uint32': b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(Math.trunc(Number(value)) || 0)))); break;
    case 'int32': b.writeInt32LE(Number(BigInt.asIntN(32, BigInt(Math.trunc(Number(value)) || 0)))); break;
    case 'float32': b.writeFloatLE(Number(value)); break;
    case 'float64': b.writeDoubleLE(Number(value)); break;
    case 'uint64': b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(typeof value === 'bigint' ? value : Math.trunc(Number(value)) || 0))); break;
    case 'int64': b.writeBigInt64LE(BigInt.asIntN(64, BigInt(typeof value === 'bigint' ? value : Math.trunc(Number(value)) || 0))); break;
    case 'bool': b.writeUInt8(typeof value === 'number' ? value & 0xff : value ? 1 : 0); break;
  }
  s.fields.push({ at: s.length, width: SIZES[type], kind: 'value', what });
  s.bytes(b);
}

function value(s, kv, what, depth = 0) {
  if (kv.type === 'string') return s.string(String(kv.value), what);
  if (kv.type !== 'array') return scalar(s, kv.type, kv.value, what);
  s.int(4, kv.itemTypeId ?? TYPES.indexOf(kv.itemType), 'type', `${what} item type`);
  s.int(8, kv.count ?? kv.value.length, 'count', `${what} count`);
  for (const x of kv.value) {
    if (kv.itemType === 'array') value(s, x, what, depth + 1);
    else if (kv.itemType === 'string') s.string(String(x), what);
    else scalar(s, kv.itemType, x, what);
  }
}

/**
 * Encodes a file: { version, metadata: [{ key, type, value, typeId?, itemType?, count? }], tensors: [{ name, dims
 * (innermost first), ggml (id), offset }], alignment, data (Buffer), tensorCount?, kvCount? }.
 * Returns { buf, fields }: fields = [{ at, width, kind, what }].
 */
function encode(f) {
  const s = new Sink();
  s.bytes(Buffer.from(f.magic ?? 'GGUF', 'latin1'));
  s.int(4, f.version ?? 3, 'version', 'version');
  s.int(8, f.tensorCount ?? f.tensors.length, 'count', 'tensor count');
  s.int(8, f.kvCount ?? f.metadata.length, 'count', 'metadata count');
  for (const kv of f.metadata) {
    s.string(kv.key, `key ${kv.key}`);
    s.int(4, kv.typeId ?? TYPES.indexOf(kv.type), 'type', `type of ${kv.key}`);
    value(s, kv, kv.key);
  }
  for (const t of f.tensors) {
    s.string(t.name, `name of ${t.name}`);
    s.int(4, t.nDims ?? t.dims.length, 'count', `n_dims of ${t.name}`);
    for (const d of t.dims) s.int(8, d, 'dim', `dim of ${t.name}`);
    s.int(4, t.ggml, 'ggml', `type of ${t.name}`);
    s.int(8, t.offset, 'offset', `offset of ${t.name}`);
  }
  s.pad(f.alignment ?? 32);
  const dataStart = s.length;
  s.bytes(f.data);
  return { buf: Buffer.concat(s.parts, s.length), fields: s.fields, dataStart };
}

/** Lays out tensors ({ name, shape (outermost first), type: 'F32'|'F16'|'Q8_0', bytes: Buffer }) at 32-byte alignment. */
function layout(tensors, alignment = 32) {
  const parts = [];
  let at = 0;
  const infos = tensors.map((t) => {
    const info = { name: t.name, dims: t.shape.slice().reverse(), ggml: GGML[t.type].id, offset: at };
    const pad = (alignment - (t.bytes.length % alignment)) % alignment;
    parts.push(t.bytes, Buffer.alloc(pad));
    at += t.bytes.length + pad;
    return info;
  });
  return { tensors: infos, data: Buffer.concat(parts) };
}

/** Float values → the bytes of a GGML type (F16 by truncation is enough for a fuzzing seed; Q8_0 with scale max/127). */
function tensorBytes(type, values) {
  if (type === 'F32') return Buffer.from(Float32Array.from(values).buffer);
  if (type === 'F16') {
    const out = Buffer.alloc(values.length * 2);
    values.forEach((x, i) => out.writeUInt16LE(f16(x), 2 * i));
    return out;
  }
  const out = Buffer.alloc((values.length / 32) * 34);
  for (let b = 0; b < values.length / 32; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(values[b * 32 + i]));
    const d = amax / 127;
    out.writeUInt16LE(f16(d), b * 34);
    for (let i = 0; i < 32; i++) out.writeInt8(d === 0 ? 0 : Math.max(-127, Math.min(127, Math.round(values[b * 32 + i] / d))), b * 34 + 2 + i);
  }
  return out;
}

/** float → IEEE half bits (round toward zero; subnormals flushed): enough for random seed weights. */
function f16(x) {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  const u = b.readUInt32LE(0);
  const sign = (u >>> 16) & 0x8000, exp = ((u >>> 23) & 0xff) - 127 + 15, mant = (u >>> 13) & 0x3ff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | mant;
}

module.exports = { TYPES, SIZES, GGML, v, encode, layout, tensorBytes };
