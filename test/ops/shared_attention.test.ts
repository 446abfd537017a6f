// Shared-prefix decode attention (engine/ops.h "shared-prefix decode attention"): the cpu reference vs emu (both
// thread orders) and cuda when present, and — the independent check — the cpu reference vs plain attention (the
// `attention` op's reference, engine/cpu/attention.cpp) of each sequence over its whole context.
// Each case is a batch of sharing groups (size, shared length, the members' tail lengths beyond it) and of loose
// sequences in no group. Sequences are scattered over the batch (a group's members are not adjacent, its leader is
// not the first index). Members point at the leader's physical blocks for the whole blocks of the shared keys; when
// the shared length ends inside a block, each member has its own copy of that block whose shared keys equal the
// leader's and whose later keys are its own (the contract is equal keys, read through the leader's table).
import { binding } from '../../lib/binding';
import { EmuOptions, FloatDType, OpCase, opSuite, SHORT, SM86_SMEM } from './harness';
import { normal, shuffled, uniform } from '../util/random';

interface Group { shared: number; tails: number[] }
interface Spec {
  dtype: FloatDType;
  headDim: number;
  nHeads: number;
  nKvHeads: number;
  blockSize: number;
  groups: Group[];
  loose?: number[];  // contexts of sequences in no group
  timeoutMs?: number;
  smCount?: number;  // the decode split's SM count (the op's smCount, on every device); the backend's when absent
  emu?: EmuOptions;  // the emulated device (its shared memory picks the shared kernel's query tile)
}

let nextSeed = 11;
function sharedCase(s: Spec): OpCase {
  const seed = (nextSeed += 7919);
  const D = s.headDim, bs = s.blockSize, row = s.nHeads * D;
  const headStride = bs * D, blockStride = s.nKvHeads * headStride;
  // Sequences in creation order: each group's members (leader first), then the loose ones.
  interface Seq { group: number; member: number; shared: number; ctx: number }
  const seqs: Seq[] = [];
  s.groups.forEach((g, gi) => g.tails.forEach((t, m) => seqs.push({ group: gi, member: m, shared: g.shared, ctx: g.shared + t })));
  for (const ctx of s.loose ?? []) seqs.push({ group: -1, member: 0, shared: 0, ctx });
  const batch = seqs.length;
  const slot = shuffled(batch, seed);  // creation index -> batch index
  const used = seqs.map((q) => Math.ceil(q.ctx / bs));
  const maxBlocksPerSeq = Math.max(...used) + 1;
  const nBlocks = used.reduce((a, b) => a + b, 0) + 2;
  const perm = shuffled(nBlocks, seed + 5);
  let nextBlock = 0;
  const blockTable = new Int32Array(batch * maxBlocksPerSeq).fill(-1);
  const leaderIdx: number[] = [];  // group -> creation index of its leader
  const copies: Array<[number, number, number]> = [];  // (member block, leader block, keys to copy)
  seqs.forEach((q, i) => {
    const b = slot[i];
    const whole = Math.floor(q.shared / bs);
    if (q.group >= 0 && q.member === 0) leaderIdx[q.group] = i;
    for (let k = 0; k < used[i]; k++) {
      if (q.group >= 0 && q.member > 0 && k < whole) {
        blockTable[b * maxBlocksPerSeq + k] = blockTable[slot[leaderIdx[q.group]] * maxBlocksPerSeq + k];
      } else {
        blockTable[b * maxBlocksPerSeq + k] = perm[nextBlock++];
        if (q.group >= 0 && q.member > 0 && k === whole && q.shared % bs) {
          copies.push([blockTable[b * maxBlocksPerSeq + k], blockTable[slot[leaderIdx[q.group]] * maxBlocksPerSeq + k], q.shared % bs]);
        }
      }
    }
  });
  const ctxLen = new Int32Array(batch), sharedLen = new Int32Array(batch);
  seqs.forEach((q, i) => { ctxLen[slot[i]] = q.ctx; sharedLen[slot[i]] = q.shared; });
  const groupStart = new Int32Array(s.groups.length + 1);
  const groupSeqs: number[] = [];
  s.groups.forEach((g, gi) => {
    seqs.forEach((q, i) => { if (q.group === gi) groupSeqs.push(slot[i]); });
    groupStart[gi + 1] = groupSeqs.length;
  });
  const scale = 1 / Math.sqrt(D);
  const common = {
    blockSize: bs, nKvHeads: s.nKvHeads, headDim: D, headStride, blockStride, batch, nHeads: s.nHeads, maxBlocksPerSeq, scale,
    ...(s.smCount === undefined ? {} : { smCount: s.smCount }),
  };
  const fillCache = (seedOff: number) => {
    const c = uniform(nBlocks * blockStride, seed + seedOff, -1.7, 1.7);
    for (const [mb, lb, n] of copies) {
      for (let h = 0; h < s.nKvHeads; h++) {
        const dst = mb * blockStride + h * headStride, src = lb * blockStride + h * headStride;
        c.copyWithin(dst, src, src + n * D);
      }
    }
    return c;
  };
  const groups = s.groups.map((g) => `${g.tails.length}x${g.shared}+[${g.tails.length > 6 ? `${Math.min(...g.tails)}..${Math.max(...g.tails)}` : g.tails.join(',')}]`);
  const maxCtx = Math.max(...seqs.map((q) => q.ctx));
  const split = s.smCount === undefined ? null
    : binding().attentionDecodeSplit({ batch, nHeads: s.nHeads, nKvHeads: s.nKvHeads, maxCtxLen: maxCtx, smCount: s.smCount });
  const name = `shared_attention(dtype=${SHORT[s.dtype]}, D=${D}, heads=${s.nHeads}/${s.nKvHeads}, bs=${bs}, ` +
    `groups=${groups.join(' ')}${s.loose ? `, loose=[${s.loose.join(',')}]` : ''}` +
    `${split ? `, sms=${s.smCount} (${split.headsPerBlock} heads x ${split.nChunks} chunks of ${split.chunkLen})` : ''}` +
    `${s.emu?.maxSharedMemoryPerBlockOptin ? `, emu smem ${s.emu.maxSharedMemoryPerBlockOptin}` : ''})`;
  return {
    name,
    op: 'shared_attention',
    dtype: s.dtype,
    params: { ...common, nGroups: s.groups.length },
    inputs: () => ({
      q: normal(batch * row, seed + 1),
      kCache: fillCache(2),
      vCache: fillCache(3),
      blockTable,
      ctxLen,
      sharedLen,
      groupStart,
      groupSeqs: Int32Array.from(groupSeqs),
    }),
    outputs: { out: { numel: batch * row } },
    timeoutMs: s.timeoutMs,
    emu: s.emu,
    independent: {
      op: 'attention',
      params: { ...common, nTokens: batch, mask: 'causal' },
      inputs: (x) => ({
        q: x.q, kCache: x.kCache, vCache: x.vCache, blockTable: x.blockTable, ctxLen: x.ctxLen,
        qStart: Int32Array.from({ length: batch + 1 }, (_, i) => i),
      }),
      output: 'out',
      numel: batch * row,
    },
  };
}

const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
const cases: OpCase[] = [
  // Short shared runs at the block boundary (15 cuts a block, 16 fills one), groups of 1 and 2, tails of 0 (the
  // query's context is all shared) beside longer ones, loose sequences.
  sharedCase({ dtype: 'float32', headDim: 64, nHeads: 4, nKvHeads: 2, blockSize: 16, loose: [20, 1],
    groups: [{ shared: 16, tails: [1, 5] }, { shared: 15, tails: [3] }, { shared: 15, tails: [0, 2] }, { shared: 16, tails: [0] }] }),
  // 16 sequences over 1000 shared keys (the shared length cuts a decode chunk: slot n_chunks), tails 0..15; a group
  // that shares nothing (shared length 0).
  sharedCase({ dtype: 'float32', headDim: 128, nHeads: 8, nKvHeads: 2, blockSize: 16,
    groups: [{ shared: 1000, tails: range(16, (i) => i) }, { shared: 0, tails: [7, 1, 40] }] }),
  // 64 sequences on 4096 shared keys, MQA: 128 query rows per kv head, 4 row tiles; one loose long context.
  sharedCase({ dtype: 'float32', headDim: 64, nHeads: 2, nKvHeads: 1, blockSize: 16, loose: [300],
    groups: [{ shared: 4096, tails: range(64, (i) => (i * 7) % 33) }], timeoutMs: 120000 }),
  // Low precision: two groups with long and short shared runs, GQA 4 and none, block size 32.
  sharedCase({ dtype: 'float16', headDim: 128, nHeads: 4, nKvHeads: 1, blockSize: 16,
    groups: [{ shared: 4096, tails: [1, 200] }, { shared: 16, tails: [0, 3, 17, 1, 2] }], timeoutMs: 120000 }),
  sharedCase({ dtype: 'bfloat16', headDim: 64, nHeads: 8, nKvHeads: 8, blockSize: 32, loose: [5],
    groups: [{ shared: 1000, tails: [1, 130, 0] }, { shared: 15, tails: [4, 4] }] }),
  // Decode splits forced by the SM count: at 132 SMs a small short batch gets one head per block and chunks of 8 keys
  // (the shared length 37 cuts one; chunks end inside cache blocks); 1024 SMs cut 1030 keys into chunks of 11, the
  // shared 1000 ending inside one; 1 SM keeps one chunk of whole GQA groups.
  sharedCase({ dtype: 'float32', headDim: 64, nHeads: 8, nKvHeads: 2, blockSize: 16, loose: [15],
    groups: [{ shared: 37, tails: [0, 5] }], smCount: 132 }),
  sharedCase({ dtype: 'float16', headDim: 128, nHeads: 4, nKvHeads: 4, blockSize: 16,
    groups: [{ shared: 1000, tails: [0, 7, 30] }], smCount: 1024 }),
  sharedCase({ dtype: 'bfloat16', headDim: 64, nHeads: 8, nKvHeads: 1, blockSize: 16, loose: [3],
    groups: [{ shared: 100, tails: [1, 20] }, { shared: 16, tails: [2] }], smCount: 1 }),
  // Head_dim 256 on an emu with sm_86/sm_89's 99 KiB per block: the shared kernel's 16-row tile (its 32-row one needs
  // 102,656 bytes), 20 rows per kv head in the big group (2 tiles).
  sharedCase({ dtype: 'float32', headDim: 256, nHeads: 4, nKvHeads: 2, blockSize: 16, loose: [9],
    groups: [{ shared: 50, tails: range(10, (i) => i % 4) }, { shared: 16, tails: [0, 1] }], emu: { maxSharedMemoryPerBlockOptin: SM86_SMEM } }),
  sharedCase({ dtype: 'float16', headDim: 256, nHeads: 2, nKvHeads: 1, blockSize: 16,
    groups: [{ shared: 300, tails: [1, 2, 0] }], emu: { maxSharedMemoryPerBlockOptin: SM86_SMEM } }),
];

opSuite('shared_attention', cases);

// The op runner checks the contract of ops.h from the index tensors before any kernel runs: a coded error, never a
// read out of bounds. 3 sequences of 20 keys, 2 blocks of 16 each, 8 query heads on 4 kv heads of 8 dims.
describe('shared_attention: the op runner refuses arguments that break the contract', () => {
  const b = binding();
  const run = (over: { ctx?: number[]; shared?: number[]; groupStart?: number[]; groupSeqs?: number[] }) => {
    const D = 8, nHeads = 8, nKv = 4, bs = 16, batch = 3;
    const f32 = (n: number) => new b.AddonTensor('cpu', 0, n, normal(n, 3));
    const i32 = (a: number[]) => new b.AddonTensor('cpu', 3, a.length, Int32Array.from(a));
    const groupStart = over.groupStart ?? [0, 2];
    b.runOpSync('shared_attention', 'cpu', {
      dtype: 0, blockSize: bs, nKvHeads: nKv, headDim: D, batch, nHeads, nGroups: groupStart.length - 1, maxBlocksPerSeq: 2,
      scale: 0.3, q: f32(batch * nHeads * D), out: new b.AddonTensor('cpu', 0, batch * nHeads * D, null),
      kCache: f32(6 * nKv * bs * D), vCache: f32(6 * nKv * bs * D), blockTable: i32([0, 1, 0, 2, 3, 4]),
      ctxLen: i32(over.ctx ?? [20, 20, 20]), sharedLen: i32(over.shared ?? [16, 16, 0]), groupStart: i32(groupStart),
      groupSeqs: i32(over.groupSeqs ?? [0, 1]),
    });
  };
  test('a valid call runs; each broken rule is an ERR_INVALID_ARG naming it', () => {
    expect(() => run({})).not.toThrow();
    const refused = (over: Parameters<typeof run>[0], message: string | RegExp) => {
      let err: (Error & { code?: string }) | undefined;
      try { run(over); } catch (e) { err = e as Error & { code?: string }; }
      expect(err?.code).toBe('ERR_INVALID_ARG');
      expect(err?.message).toMatch(message);
    };
    refused({ shared: [16, 16, 4] }, /sequence 2: expected 0 <= sharedLen \(4\) <= ctxLen \(20\).*a group when sharedLen > 0/);
    refused({ shared: [21, 21, 0] }, /sequence 0: expected 0 <= sharedLen \(21\) <= ctxLen \(20\)/);
    refused({ shared: [16, 8, 0] }, 'group 0: sharedLen differs between its sequences');
    refused({ groupStart: [0, 2, 3], groupSeqs: [0, 1, 1] }, 'sequence 1 is in two groups');
    refused({ groupSeqs: [0, 3] }, 'Expected groupSeqs[1] in [0, 2] but received 3');
    refused({ groupStart: [0, 4] }, /groupStart/);
    refused({ ctx: [20, 20, 40] }, /sequence 2: .*1 <= ctxLen <= 32/);
  });
});
