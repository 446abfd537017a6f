// llama.cpp (node-llama-cpp, CPU) as an oracle, run as a child process (the package is ESM-only): prints the
// teacher-forced float32 logits of every position of a token sequence, as JSON, for a GGUF file.
// Usage: node test/util/llamacpp-logits.mjs <model.gguf> <tokens as JSON>
//        node test/util/llamacpp-logits.mjs <model.gguf> --tokenize <texts as JSON>   (token ids of each text, no BOS)
//        node test/util/llamacpp-logits.mjs <model.gguf> --greedy <n> <prompt ids as JSON>  (n greedy tokens)
// Settings from ../shared/oracles.md: one thread, no flash attention, F32 KV cache (exact comparisons).
// node-llama-cpp is not in the lockfile (scripts/oracles.js says why); `npm test` installs it first.
const { getLlama, LlamaLogLevel } = await import('node-llama-cpp').catch((e) => {
  throw new Error(`node-llama-cpp is missing: run \`node scripts/oracles.js\` (npm test does)\n${e.message}`);
});

const [file, tokensJson] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: file });
if (tokensJson === '--tokenize') {
  const texts = JSON.parse(process.argv[4]);
  process.stdout.write(JSON.stringify(texts.map((t) => Array.from(model.tokenize(t, false)))));
  await model.dispose();
  await llama.dispose();
  process.exit(0);
}
const greedy = tokensJson === '--greedy';
const tokens = JSON.parse(greedy ? process.argv[5] : tokensJson);
const context = await model.createContext({
  contextSize: Math.max(tokens.length + 1 + (greedy ? Number(process.argv[4]) : 0), 32), threads: 1, flashAttention: false,
  experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
});
const seq = context.getSequence();
if (greedy) {
  const out = [];
  for await (const t of seq.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
    out.push(t);
    if (out.length >= Number(process.argv[4])) break;
  }
  process.stdout.write(JSON.stringify(out));
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.exit(0);
}
const res = await seq.controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }]));
const vocab = model.tokens.length ?? 0;
const out = res.map((r) => {
  const row = new Array(vocab).fill(0);
  for (const [t, v] of r.next.logits) row[t] = v;
  return row;
});
process.stdout.write(JSON.stringify(out));
await context.dispose();
await model.dispose();
await llama.dispose();
