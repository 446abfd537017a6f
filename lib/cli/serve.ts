// `eet serve <model>`: the OpenAI-compatible server (lib/server/) on a model loaded in the background — /health
// answers 503 until the model is ready. Binds 127.0.0.1 unless --host says otherwise. SIGTERM / SIGINT drain: no
// new requests, those in flight finish within --grace-ms (then they are cut), the model is freed, exit code 0.
import type { Command } from 'commander';
import { InvalidArgumentError as OptionError } from 'commander';
import { resolveDevice } from '../devices';
import { loadModel, type ModelDType } from '../model';
import { createServer } from '../server';

interface ServeFlags {
  host: string;
  port: number;
  apiKey?: string;
  servedModelName?: string;
  device: string;
  dtype?: ModelDType;
  tokenizer?: string;
  maxSeqLen?: number;
  maxBatch?: number;
  maxQueued?: number;
  kvCacheTokens?: number;
  bodyLimit: number;
  graceMs: number;
}

function count(v: string): number {
  if (!/^\d+$/.test(v.trim())) throw new OptionError('Expected a non-negative integer.');
  return Number(v);
}

async function serve(modelPath: string, flags: ServeFlags): Promise<void> {
  const device = resolveDevice(flags.device);
  const model = loadModel(modelPath, {
    device, dtype: flags.dtype, tokenizer: flags.tokenizer, maxSeqLen: flags.maxSeqLen, maxBatch: flags.maxBatch,
    maxQueued: flags.maxQueued, kvCacheTokens: flags.kvCacheTokens,
  });
  const server = await createServer(model, {
    modelName: flags.servedModelName,
    apiKey: flags.apiKey ?? process.env.EET_API_KEY,
    bodyLimit: flags.bodyLimit,
  });
  const url = await server.listen({ port: flags.port, host: flags.host });
  process.stderr.write(`eet serve: listening on ${url} (OpenAI API under /v1; /health, /metrics); loading ${modelPath} on ${device}\n`);
  model.then((m) => {
    process.stderr.write(`eet serve: ${server.state.modelName} ready in ${m.loadMs.toFixed(0)} ms (${m.config.dtype}, maxBatch ${m.config.maxBatch}, ` +
      `KV cache ${m.config.kvCacheTokens} tokens)\n`);
  }, (e: Error) => process.stderr.write(`eet serve: the model failed to load: ${e.message}\n`));
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.stderr.write(`eet serve: ${signal}: draining (grace ${flags.graceMs} ms)\n`);
      server.drain(flags.graceMs).then(resolve, (e: Error) => {
        process.stderr.write(`eet serve: drain failed: ${e.message}\n`);
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

export function registerServe(cmd: Command): void {
  cmd
    .command('serve')
    .description('serve a model over the OpenAI API (completions, chat, embeddings, models) with /health and /metrics')
    .argument('<model>', 'model file or folder (GGUF, Hugging Face folder, llama2.c .bin)')
    .option('--host <host>', 'address to bind (0.0.0.0 exposes the server beyond this machine)', '127.0.0.1')
    .option('--port <port>', 'port', count, 8080)
    .option('--api-key <key>', 'bearer token required on /v1 routes (or EET_API_KEY)')
    .option('--served-model-name <name>', 'the model id clients use (default: the file or folder name)')
    .option('-d, --device <device>', "'auto', 'cpu', 'emu', 'cuda' or 'cuda:N'", 'auto')
    .option('--dtype <dtype>', "'float32', 'float16' or 'bfloat16' (default: float16 on a GPU, else float32)")
    .option('-z, --tokenizer <file>', 'tokenizer file (llama2.c checkpoints)')
    .option('--max-seq-len <n>', 'context per sequence (default: the model\'s)', count)
    .option('--max-batch <n>', 'sequences running at once (default: 32 on a GPU, 4 on cpu)', count)
    .option('--max-queued <n>', 'requests waiting for a slot before 429 (default 1024)', count)
    .option('--kv-cache-tokens <n>', 'KV cache size in tokens (default: from memory)', count)
    .option('--body-limit <bytes>', 'largest request body (413 beyond)', count, 1024 * 1024)
    .option('--grace-ms <ms>', 'on SIGTERM, how long requests in flight may finish', count, 30_000)
    .action((model: string, flags: ServeFlags) => serve(model, flags));
}
