/**
 * Prometheus metrics at `/metrics`: jobs by status, queue depth, latency histograms per task and stage, tokens per
 * second, HTTP requests, and the model's batch counters. One registry per server, so tests can start several.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Model } from '../model/index.ts';

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly jobsFinished = new Counter({
    name: 'dialect_jobs_finished_total',
    help: 'Jobs that ended, by task and final status.',
    labelNames: ['task', 'status'] as const,
    registers: [this.registry],
  });
  readonly jobsRefused = new Counter({
    name: 'dialect_jobs_refused_total',
    help: 'Model requests refused before a job was made, by reason (QUEUE_FULL, RATE_LIMITED, ...).',
    labelNames: ['task', 'code'] as const,
    registers: [this.registry],
  });
  readonly jobs = new Gauge({
    name: 'dialect_jobs',
    help: 'Jobs of this process by status (queued, running).',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'dialect_queue_depth',
    help: 'Jobs waiting to run.',
    registers: [this.registry],
  });
  readonly jobLatency = new Histogram({
    name: 'dialect_job_duration_seconds',
    help: 'Time from job creation to its end (queue included), by task, for succeeded jobs.',
    labelNames: ['task'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly stageLatency = new Histogram({
    name: 'dialect_stage_duration_seconds',
    help: 'Model time per stage of succeeded jobs, by task and stage.',
    labelNames: ['task', 'stage'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly tokens = new Counter({
    name: 'dialect_tokens_generated_total',
    help: 'Tokens the LLM produced (answer or image tokens), by task.',
    labelNames: ['task'] as const,
    registers: [this.registry],
  });
  readonly tokensPerSecond = new Histogram({
    name: 'dialect_tokens_per_second',
    help: 'LLM decode speed of each succeeded job (tokens / decode seconds), by task.',
    labelNames: ['task'] as const,
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
    registers: [this.registry],
  });
  readonly httpRequests = new Histogram({
    name: 'dialect_graphql_request_duration_seconds',
    help: 'GraphQL operations over HTTP by operation type and outcome.',
    labelNames: ['type', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120],
    registers: [this.registry],
  });
  readonly wsConnections = new Gauge({
    name: 'dialect_websocket_connections',
    help: 'Open graphql-ws connections.',
    registers: [this.registry],
  });

  constructor(model?: Model) {
    collectDefaultMetrics({ register: this.registry, prefix: 'dialect_process_' });
    if (model !== undefined) {
      const registry = this.registry;
      new Gauge({
        name: 'dialect_model_batch_rows',
        help: 'Rows in the decoders: active and waiting, by decoder (llm, arDTok).',
        labelNames: ['decoder', 'state'] as const,
        registers: [registry],
        collect() {
          const m = model.metrics();
          for (const [decoder, s] of [['llm', m.llm], ['arDTok', m.arDTok]] as const) {
            this.set({ decoder, state: 'active' }, s.activeRows);
            this.set({ decoder, state: 'waiting' }, s.waiting);
          }
        },
      });
    }
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
