// The prompt pass of fused masked attention on tensor cores (cuda/attention_prefill_mma.cu: float16 / bfloat16,
// head_dim a multiple of 16 up to 256), against the cpu reference, emu in both thread orders (and the GPU when
// present). Its probabilities are rounded to the dtype before P·V; the kernel's header derives the error that adds
// (about √2 times the rms error of the cpu in the same precision), inside the harness's unchanged float16/bfloat16
// rule (rms error at most 2x the cpu's), so the cases use that rule.
// What the cases reach, on small shapes (the emulator is slow): each head-dim class (64, 128, 256: 64- and 32-key
// tiles, Q in registers or in shared memory) and head dims below their class (16, 48, 80, 96, 208); every mask, with
// prompts over one key tile and not a multiple of it (several query tiles, a partial last one, causal / anti-causal
// tile skipping and diagonal tiles), continuation chunks (n_q < ctx), cross-attention with n_q > ctx, 1-query
// sequences in a prompt batch; T5's relative position bias both ways; MHA, GQA (8/2) and MQA; block sizes 7, 16 and
// 32 with shuffled block tables; 16-byte and scalar loads ('odd' strides) and a strided output. And, through the
// emulator's launch trace, that the op runs this kernel for these dtypes and the SIMT one when told to.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { toHalfBits } from '../../lib/half';
import { FloatDType, OpCase, OpWorker, opSuite, SM86_SMEM } from './harness';
import { attentionCase, Mask, Spec, tensorCoreEligible } from './attention_cases';

const dtypes: FloatDType[] = ['float16', 'bfloat16'];
const specs: Spec[] = [];
const add = (s: Spec) => specs.push(s);

// Head dims: the three classes at their full width and below it, causal, GQA, prompts of 1..100 queries.
const prompts = [100, 37, 1, 70];
[64, 128, 256, 16, 48, 80, 96, 208].forEach((headDim, i) => {
  add({ dtype: dtypes[i % 2], headDim, nHeads: 4, nKvHeads: 2, mask: 'causal', blockSize: 16, ctx: prompts, nq: prompts });
});
// Every mask, both dtypes, MHA and GQA 8/2: whole prompts and continuation chunks over cached keys.
const masks: Mask[] = ['causal', 'bidirectional', 'anticausal'];
for (const dtype of dtypes) {
  masks.forEach((mask, j) => {
    const [nHeads, nKvHeads] = j % 2 === 0 ? [8, 2] : [4, 4];
    add({ dtype, headDim: 64, nHeads, nKvHeads, mask, blockSize: 16, ctx: [130, 17, 3, 70], nq: [70, 17, 2, 66] });
  });
  // T5's decoder over an encoder memory: n_q may exceed ctx, every query sees every key.
  add({ dtype, headDim: 64, nHeads: 8, nKvHeads: 2, mask: 'cross', blockSize: 16, ctx: [5, 70, 17, 1], nq: [12, 3, 80, 9] });
}
// 32-key tiles (head_dim 256): an anti-causal tile's later rows see no key of its first key tile (their max stays
// -inf for a tile); the sm_86 shared-memory limit still fits the tile (71,168 bytes); head_dim 128 anti-causal.
add({ dtype: 'bfloat16', headDim: 256, nHeads: 2, nKvHeads: 1, mask: 'anticausal', blockSize: 16, ctx: [90, 40], nq: [90, 33], emu: { maxSharedMemoryPerBlockOptin: SM86_SMEM } });
add({ dtype: 'float16', headDim: 256, nHeads: 2, nKvHeads: 2, mask: 'bidirectional', blockSize: 32, ctx: [70, 5], nq: [70, 5] });
add({ dtype: 'float16', headDim: 128, nHeads: 4, nKvHeads: 1, mask: 'anticausal', blockSize: 16, ctx: [150, 9], nq: [150, 9] });
// Longer prompts: 17 causal query tiles (longest first, the diagonal tile of each), a BERT-style batch.
add({ dtype: 'float16', headDim: 64, nHeads: 1, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [1025, 3], nq: [1025, 3] });
add({ dtype: 'bfloat16', headDim: 128, nHeads: 2, nKvHeads: 1, mask: 'bidirectional', blockSize: 16, ctx: [300, 77], nq: [300, 77] });
// T5's relative position bias: bidirectional buckets under the encoder's mask, unidirectional under the causal one
// (with a continuation chunk), T5's scale of 1.
const t5Bi = { buckets: 32, maxDistance: 128, bidirectional: true, t5Scale: true };
const t5Uni = { buckets: 32, maxDistance: 128, bidirectional: false, t5Scale: true };
add({ dtype: 'float16', headDim: 64, nHeads: 4, nKvHeads: 4, mask: 'bidirectional', blockSize: 16, ctx: [1, 7, 130], nq: [1, 7, 130], rel: t5Bi });
add({ dtype: 'bfloat16', headDim: 64, nHeads: 4, nKvHeads: 2, mask: 'causal', blockSize: 16, ctx: [40, 17, 150], nq: [5, 17, 90], rel: t5Uni });
// Strided layouts: q rows inside a fused QKV buffer with block size 7; odd strides (scalar loads, strided out).
add({ dtype: 'float16', headDim: 64, nHeads: 6, nKvHeads: 1, mask: 'causal', blockSize: 7, ctx: [50, 9, 80], nq: [50, 4, 33], layout: 'fused' });
add({ dtype: 'bfloat16', headDim: 96, nHeads: 3, nKvHeads: 1, mask: 'anticausal', blockSize: 32, ctx: [70, 33], nq: [12, 33], layout: 'odd' });
add({ dtype: 'float16', headDim: 128, nHeads: 2, nKvHeads: 2, mask: 'cross', blockSize: 7, ctx: [29, 3], nq: [40, 2], layout: 'odd' });

for (const s of specs) {
  if (!tensorCoreEligible(s)) throw new Error(`not a tensor-core case: ${JSON.stringify(s)}`);
}
opSuite('attention on tensor cores', specs.map(attentionCase));

describe('attention prompt kernel choice (emu launch trace)', () => {
  // A worker of its own writes the emulator's launch trace (each kernel's first launch in the process) to a file.
  const trace = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'eet-attn-')), 'trace.txt');
  const worker = new OpWorker({ EET_EMU_TRACE: trace });
  afterAll(() => {
    worker.stop();
    fs.rmSync(path.dirname(trace), { recursive: true, force: true });
  });
  const launched = () => (fs.existsSync(trace) ? fs.readFileSync(trace, 'utf8') : '');
  const run = async (c: OpCase) => {
    const tensors: Record<string, unknown> = {};
    for (const [name, data] of Object.entries(c.inputs())) {
      tensors[name] = data instanceof Int32Array ? { dtype: 3, data } : { dtype: 1, data: toHalfBits(data, 'float16') };
    }
    tensors.out = { dtype: 1, numel: c.outputs.out.numel, fill: 'poison' };
    const reply = await worker.run({ op: 'attention', device: 'emu', params: { ...c.params, dtype: 1 }, tensors, aliases: {}, outputs: ['out'] }, 60000);
    expect(reply.error).toBeUndefined();
  };

  test('float16, head_dim 64: attention_prefill_mma_kernel; with simtPrefill: attention_prefill_kernel', async () => {
    const spec: Spec = { dtype: 'float16', headDim: 64, nHeads: 2, nKvHeads: 1, mask: 'causal', blockSize: 16, ctx: [20], nq: [20] };
    await run(attentionCase(spec));
    expect(launched()).toMatch(/attention_prefill_mma_kernel<__half, 64>/);
    expect(launched()).not.toMatch(/attention_prefill_kernel</);
    await run(attentionCase({ ...spec, simt: true }));
    expect(launched()).toMatch(/attention_prefill_kernel<__half, 2, 8>/);
  });
});
