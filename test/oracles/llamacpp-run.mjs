// llama.cpp oracle (node-llama-cpp 3.22.1, CPU prebuilt), run in a child process so that an ESM-only package and a
// possible native crash stay out of jest. Usage: node test/oracles/llamacpp-run.mjs JOB.json OUT.json
//
// JOB: { model: path.gguf, contextSize, kind: 'logits' | 'greedy' | 'embed', sequences: number[][], steps? }
//   logits: teacher-forced raw logits after every position of each sequence (controlledEvaluate), float32 rows.
//   greedy: `steps` tokens generated greedily after each sequence (evaluate loop, temperature 0).
//   embed:  the pooled embedding of each sequence (embedding context; pooling as the GGUF's <arch>.pooling_type).
// OUT: { results: [...] } with one entry per sequence: number[][] (logits), number[] (greedy, embed).
//
// Settings (../../shared/oracles.md section 2): getLlama({ gpu: false, build: 'never' }) — the prebuilt CPU binary,
// never a compile; threads 1 (the default 4 runs 150–800× slower on 2-core machines); flashAttention false and an F32
// KV cache (with llama.cpp's defaults, F16 KV and flash attention, logits differ by ~3e-2); clearHistory between
// independent sequences so each starts at position 0.
import * as fs from 'fs';

const [jobFile, outFile] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(jobFile, 'utf8'));
// node-llama-cpp is not in the lockfile (scripts/oracles.js says why); `npm test` installs it first.
const { getLlama, LlamaLogLevel } = await import('node-llama-cpp').catch((e) => {
  throw new Error(`node-llama-cpp is missing: run \`node scripts/oracles.js\` (npm test does)\n${e.message}`);
});

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, logger: (_level, msg) => process.stderr.write(msg) });
const model = await llama.loadModel({ modelPath: job.model, gpuLayers: 0 });
const results = [];
if (job.kind === 'embed') {
  const ctx = await model.createEmbeddingContext({ contextSize: job.contextSize, threads: 1 });
  for (const s of job.sequences) results.push(Array.from((await ctx.getEmbeddingFor(s)).vector));
  await ctx.dispose();
} else {
  const ctx = await model.createContext({
    contextSize: job.contextSize,
    batchSize: job.contextSize,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  const seq = ctx.getSequence();
  for (const s of job.sequences) {
    await seq.clearHistory();
    if (job.kind === 'logits') {
      const out = await seq.controlledEvaluate(s.map((t) => [t, { generateNext: { logits: true } }]));
      results.push(out.map((o) => {
        const row = new Array(job.vocabSize).fill(NaN);
        for (const [tok, logit] of o.next.logits) row[tok] = logit;
        return row;
      }));
    } else {
      const gen = [];
      for await (const t of seq.evaluate(s, { temperature: 0, yieldEogToken: true })) {
        gen.push(t);
        if (gen.length >= job.steps) break;
      }
      results.push(gen);
    }
  }
  await ctx.dispose();
}
await model.dispose();
await llama.dispose();
fs.writeFileSync(outFile, JSON.stringify({ results }));
