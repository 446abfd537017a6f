// A fuzz worker process: builds the seeds once, then for each case the parent sends it writes the mutated files,
// runs what a user would — `eet inspect`'s reader, loadModel, encode, generate (greedy with logits, then sampled),
// stream, decode, the chat template, embed for encoders — and reports how it ended. Crashes, hangs and heap
// exhaustion are seen by the parent (this process dies or stops answering); here each step's error is classified:
// an EetError with a code is the expected outcome for a broken file, anything else is an "untyped" failure, and the
// codes that mean a bug (ERR_INTERNAL, ERR_KERNEL) are "internal" failures. The event loop's longest stall is
// measured too: a case that blocks it for seconds fails even if it ends.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { monitorEventLoopDelay } = require('perf_hooks');
const DIST = path.resolve(__dirname, '../../dist');
const { loadModel } = require(path.join(DIST, 'index'));
const { EetError } = require(path.join(DIST, 'errors'));
const { inspectModel } = require(path.join(DIST, 'cli/inspect'));
const { buildSeeds } = require('./seeds');
const { materialize } = require('./cases');

/** Codes that mean the package has a bug rather than that the input is bad. */
const BUG_CODES = new Set(['ERR_INTERNAL', 'ERR_KERNEL']);

class Stop extends Error {
  constructor(result) { super('stop'); this.result = result; }
}

/** Runs one step (the parent is told which, so a crash is attributed to it); an error ends the case, classified. */
async function step(name, f) {
  process.send({ type: 'note', step: name });
  try {
    return await f();
  } catch (e) {
    const coded = e instanceof EetError && typeof e.code === 'string';
    const outcome = !coded ? 'untyped' : BUG_CODES.has(e.code) ? 'internal' : 'coded';
    throw new Stop({ outcome, step: name, code: coded ? e.code : (e && e.name) || typeof e, message: String(e && e.message).slice(0, 300),
      stack: outcome === 'coded' ? undefined : String(e && e.stack).split('\n').slice(0, 6).join('\n') });
  }
}

const SAMPLING = {
  greedy: { temperature: 0 },
  'topk-topp': { temperature: 0.8, topK: 8, topP: 0.9 },
  temperature: { temperature: 1.3 },
  penalties: { temperature: 0.7, topP: 0.95, repetitionPenalty: 1.3, presencePenalty: 0.5, frequencyPenalty: 0.5 },
};

/**
 * Opens a case as the workload does: eet inspect's reader first; when it reads a shape, load with a short context
 * (the KV cache of a fuzzed 2^20-token context is allowed but slow); when it fails, load anyway (loadModel must fail
 * with a code too).
 */
async function open(c) {
  let info = null;
  try {
    info = await step('inspect', () => inspectModel(c.model));
  } catch (e) {
    if (!(e instanceof Stop) || e.result.outcome !== 'coded') throw e;
  }
  const opts = { device: c.device, maxBatch: 2, ...c.options };
  if (info) opts.maxSeqLen = Math.min(info.config.maxSeqLen, 96);
  return step('load', () => loadModel(c.model, opts));
}

const TEXT = 'Once upon a time, hello world ✓ 123';

/** What a user does with a model. */
async function workload(c) {
  const model = await open(c);
  try {
    const tok = model.tokenizer;
    const V = model.config.vocabSize;
    const text = TEXT;
    const ids = await step('encode', () => tok.encode(text));
    await step('decode', () => tok.decode(ids.filter((id) => id < V)));
    await step('decode-random', () => tok.decode([0, V - 1, Math.floor(V / 2)], V - 1));
    if (model.config.arch === 'bert') {
      await step('embed', () => model.embed([text, 'a'], { pooling: 'mean' }));
      return { outcome: 'ok' };
    }
    // Non-finite logits (a fuzzed weight or norm) must end in ERR_NUMERIC, on greedy and sampled calls alike.
    await step('generate-greedy', () => model.generate(text, { maxNewTokens: 4, temperature: 0, logits: true, seed: 1 }));
    const o = SAMPLING[c.sampling];
    await step('generate-sampled', () => model.generate([text, [1, 2, 3].map((x) => x % V)], { ...o, maxNewTokens: 4, seed: 7 }));
    await step('stream', async () => {
      for await (const ev of model.stream(text, { ...o, maxNewTokens: 3, seed: 3, stop: ['zz'] })) void ev;
    });
    if (model.config.format === 'hf' || model.config.format === 'gguf') {
      const messages = [{ role: 'user', content: 'hello' }];
      const hasTemplate = await step('chat-template', async () => {
        try {
          await model.applyChatTemplate(messages);
          return true;
        } catch (e) {
          if (e instanceof EetError && e.code === 'ERR_UNSUPPORTED') return false; // no template
          throw e;
        }
      });
      if (hasTemplate) await step('chat', () => model.chat(messages, { maxNewTokens: 2, temperature: 0 }));
    }
    return { outcome: 'ok' };
  } finally {
    await model.dispose();
  }
}

async function runCase(seeds, msg) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `eet-fuzz-${process.pid}-`));
  const h = monitorEventLoopDelay({ resolution: 10 });
  const t0 = performance.now();
  let desc;
  let result;
  try {
    let c;
    try {
      c = materialize(seeds, msg.seed, msg.index, msg.format, dir, { pristine: msg.pristine === true });
    } catch (e) {
      return { outcome: 'harness', step: 'materialize', code: e.name, message: `the fuzzer could not write the case: ${e.message}`, stack: e.stack };
    }
    desc = c.desc;
    h.enable();
    try {
      result = await workload(c);
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
      result = e.result;
    }
  } finally {
    h.disable();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { ...result, desc, ms: performance.now() - t0,
    loopMs: h.max / 1e6, rss: process.memoryUsage().rss };
}

function main() {
  const seeds = buildSeeds();
  let current = null;
  // An error no step caught (a callback or promise the package left unhandled) fails the case in flight.
  const untracked = (e) => {
    process.send({ type: 'result', index: current?.index, outcome: 'untyped', step: 'uncaught', code: (e && e.name) || typeof e,
      message: String(e && e.message).slice(0, 300), stack: String(e && e.stack).split('\n').slice(0, 6).join('\n') }, () => process.exit(70));
  };
  process.on('uncaughtException', untracked);
  process.on('unhandledRejection', untracked);
  process.on('message', (msg) => {
    current = msg;
    if (msg.type === 'case') runCase(seeds, msg).then((r) => process.send({ type: 'result', index: msg.index, ...r }), untracked);
  });
  process.send({ type: 'ready' });
}

main();
