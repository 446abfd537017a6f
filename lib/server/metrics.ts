// GET /metrics: Prometheus text through prom-client, names in the style vLLM uses with an eet_ prefix. The engine's
// state (running and waiting sequences, KV blocks, token and prefix-cache counters, preemptions) is read from the
// context's stats() at scrape time; latencies are observed per request by the routes.
import * as client from 'prom-client';
import type { ContextStats } from '../context';

// Latency buckets (seconds): from a fast GPU's inter-token gap to a long request on a cpu.
const LATENCY = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];

export class ServerMetrics {
  readonly registry = new client.Registry();
  readonly ttft: client.Histogram;
  readonly itl: client.Histogram;
  readonly e2e: client.Histogram;
  readonly queue: client.Histogram;
  readonly finished: client.Counter<'finished_reason'>;
  readonly httpRequests: client.Counter<'route' | 'status'>;
  #last: Partial<ContextStats> = {};

  constructor(stats: () => ContextStats | null) {
    const r = this.registry;
    client.collectDefaultMetrics({ register: r, prefix: 'eet_process_' });
    const gauge = (name: string, help: string, read: (s: ContextStats) => number): void => {
      new client.Gauge({ name, help, registers: [r], collect() { const s = stats(); if (s) this.set(read(s)); } });
    };
    // Cumulative engine counters: prom-client counters only go up, so each scrape adds what the engine added.
    const counter = (name: string, help: string, key: keyof ContextStats): void => {
      const last = this.#last;
      new client.Counter({
        name, help, registers: [r],
        collect() {
          const s = stats();
          if (!s) return;
          const d = Number(s[key]) - Number(last[key] ?? 0);
          if (d > 0) this.inc(d);
          (last as Record<string, number>)[key] = Number(s[key]);
        },
      });
    };
    gauge('eet_num_requests_running', 'Sequences in the running batch.', (s) => s.running);
    gauge('eet_num_requests_waiting', 'Sequences waiting: requests not admitted yet and preempted sequences.', (s) => s.waiting);
    gauge('eet_kv_blocks_total', 'KV cache blocks in the pool.', (s) => s.blocksTotal);
    gauge('eet_kv_blocks_used', 'KV cache blocks held by sequences.', (s) => s.blocksUsed);
    gauge('eet_kv_blocks_cached', 'KV cache blocks published in the prefix cache (held or evictable).', (s) => s.blocksCached);
    gauge('eet_kv_cache_usage_perc', 'Fraction of the KV cache blocks in use (0..1).', (s) => (s.blocksTotal ? s.blocksUsed / s.blocksTotal : 0));
    counter('eet_prompt_tokens_total', 'Prompt tokens computed (prefix-cache hits excluded).', 'promptTokensComputed');
    counter('eet_prompt_tokens_cached_total', 'Prompt tokens taken from the prefix cache.', 'promptTokensCached');
    counter('eet_generation_tokens_total', 'Tokens generated.', 'generatedTokens');
    counter('eet_prefix_cache_queries_total', 'Full prompt blocks looked up in the prefix cache.', 'prefixCacheQueries');
    counter('eet_prefix_cache_hits_total', 'Full prompt blocks found in the prefix cache.', 'prefixCacheHits');
    counter('eet_num_preemptions_total', 'Sequences preempted (blocks freed, recomputed later).', 'preemptions');
    counter('eet_engine_steps_total', 'Engine steps run.', 'steps');
    counter('eet_shared_prefix_tokens_total', 'Decode tokens whose attention read shared KV blocks once for their group.', 'sharedPrefixTokens');
    counter('eet_shared_prefix_keys_saved_total', 'Key reads per layer the shared-prefix path saved: for each group and step, its shared keys × (its sequences − 1).', 'sharedPrefixKeysSaved');
    const histogram = (name: string, help: string): client.Histogram => new client.Histogram({ name, help, buckets: LATENCY, registers: [r] });
    this.ttft = histogram('eet_time_to_first_token_seconds', 'From the request arriving to its first token.');
    this.itl = histogram('eet_inter_token_latency_seconds', 'Between two tokens of a sequence, as the server sees them.');
    this.e2e = histogram('eet_e2e_request_latency_seconds', 'From the request arriving to its last token.');
    this.queue = histogram('eet_request_queue_time_seconds', 'How long a request waited for admission into the running batch.');
    this.finished = new client.Counter({ name: 'eet_request_success_total', help: 'Requests finished, by reason.', labelNames: ['finished_reason'], registers: [r] });
    this.httpRequests = new client.Counter({ name: 'eet_http_requests_total', help: 'HTTP requests, by route and status.', labelNames: ['route', 'status'], registers: [r] });
  }
}
