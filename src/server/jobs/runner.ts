/**
 * The job runner: takes queued jobs from the database (the queue lives there, so a crash loses nothing), runs each
 * on the shared model with its own AbortController while the model batches them, streams progress to subscribers,
 * and writes the result (answer, image tokens, PNG cache, timings, seed) with the job's end in one transaction.
 *
 * Data flows one way: job row → turn and images from the database → runtime → result → database → event.
 */
import { hostname } from 'node:os';
import type { Database } from '../../db/client.ts';
import { getTurn, getTurnPath, type Turn as DbTurn, type TurnResult } from '../../db/conversations.ts';
import { getImage } from '../../db/images.ts';
import { claimNextJob, failJob, recoverInterruptedJobs, renewJobLease, type ClaimedJob, type Job as DbJob } from '../../db/jobs.ts';
import { listQueuedJobs } from '../../db/server-queries.ts';
import { finishJob } from '../../db/turn-writes.ts';
import { ModelError, type ImageTokens, type ImageWithViews, type ProgressEvent, type Model, type Timings, type Turn } from '../../model/index.ts';
import { modelErrorCode } from '../errors.ts';
import type { Logger } from '../logging.ts';
import type { ServerMetrics } from '../metrics.ts';
import { ImageTokenCache } from '../services/image-cache.ts';
import type { JobEvents, JobProgress } from './events.ts';

export interface JobRunnerOptions {
  /** Jobs run at once (the model batches them). */
  concurrency: number;
  /** Lease of a running job in ms; renewed every third of it. Defaults to 60_000. */
  leaseMs?: number;
  /** Least time between two progress events of one job, in ms (stage changes always go out). Defaults to 100. */
  progressIntervalMs?: number;
}

/**
 * What the process that queued a job already knows of it (the turn as written, the input image's tokens), so that
 * the runner need not read it back. A job without a hint (after a restart, or queued elsewhere) is read from the
 * database.
 */
interface Progress {
  publish(progress: JobProgress, terminal?: boolean, job?: DbJob, turn?: DbTurn): void;
  onProgress(event: ProgressEvent): void;
}

/** What a job runs: the parts of its turn the model needs. */
export type JobSpec = Pick<DbTurn, 'task' | 'prompt' | 'settings' | 'parentId'> & {
  inputImages: { id: string }[];
  /** The input image's tokens and views, when known (else read by the first input image's id). */
  inputTokens?: ImageWithViews;
};

/** A request started ahead of its job row (see JobRunner.startEarly). */
export interface EarlyRun {
  /** Who the job row is written running for (startTurn's `claim`): this runner, with its lease. */
  readonly claim: { workerId: string; leaseMs: number };
  /** The turn and its job are written, the job already running for this runner: finish it. */
  attach(job: ClaimedJob, turn: DbTurn): void;
  /** Writing the turn failed: stop the model and free the slot. */
  abandon(): void;
}

export interface JobHint {
  turn: DbTurn;
  inputTokens?: ImageWithViews;
}

interface Running {
  userId: string;
  controller: AbortController;
  /** Why it was aborted: the user cancelled it, or the server is shutting down (then it is requeued). */
  reason: 'cancelled' | 'shutdown' | null;
  done: Promise<void>;
}

const STAGES: Record<ProgressEvent['stage'], JobProgress['stage']> = {
  encode: 'ENCODE',
  prefill: 'PREFILL',
  decode: 'DECODE',
  detokenize: 'DETOKENIZE',
  'vq-decode': 'VQ_DECODE',
};

export class JobRunner {
  readonly workerId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  /** Tokens of images read or made here, by user and id (shared with TurnService). */
  readonly images = new ImageTokenCache();
  /** Queued jobs known to this process, by id → user. */
  readonly #queued = new Map<string, string>();
  readonly #running = new Map<string, Running>();
  readonly #hints = new Map<string, JobHint>();
  #pumping = false;
  #again = false;
  #stopped = false;
  /**
   * Early runs whose job row is not claimed yet. While any exists the queue is not pumped: claimNextJob takes the
   * oldest queued row, which could be such a job, written but not yet claimed by its own run.
   */
  #claiming = 0;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #leaseMs: number;
  readonly #progressMs: number;

  constructor(
    private readonly database: Database,
    private readonly model: Model,
    private readonly events: JobEvents,
    private readonly metrics: ServerMetrics,
    private readonly logger: Logger,
    private readonly options: JobRunnerOptions,
  ) {
    this.#leaseMs = options.leaseMs ?? 60_000;
    this.#progressMs = options.progressIntervalMs ?? 100;
  }

  /**
   * Loads the jobs left queued by an earlier run (after crash recovery) and starts them; then, every lease period,
   * requeues jobs whose worker stopped renewing its lease (another server that died, on a shared PostgreSQL).
   */
  async start(): Promise<void> {
    await this.#loadQueued();
    this.#sweeper = setInterval(() => {
      recoverInterruptedJobs(this.database)
        .then(async (recovered) => {
          if (recovered.requeued.length + recovered.failed.length === 0) return;
          this.logger.warn(recovered, 'recovered jobs whose lease ran out');
          await this.#loadQueued();
        })
        .catch((error: unknown) => this.logger.warn({ err: error }, 'recovering interrupted jobs failed'));
    }, this.#leaseMs);
    this.#sweeper.unref();
  }

  async #loadQueued(): Promise<void> {
    for (const job of await listQueuedJobs(this.database)) this.#queued.set(job.id, job.userId);
    this.#gauges();
    this.#pump();
  }

  /** Jobs waiting to run. */
  get queueDepth(): number {
    return this.#queued.size;
  }

  /** Queued plus running jobs of a user. */
  activeJobs(userId: string): number {
    let count = 0;
    for (const owner of this.#queued.values()) if (owner === userId) count += 1;
    for (const running of this.#running.values()) if (running.userId === userId) count += 1;
    return count;
  }

  /** Tells the runner a job was queued. */
  enqueue(jobId: string, userId: string, hint?: JobHint): void {
    this.#queued.set(jobId, userId);
    if (hint !== undefined) this.#hints.set(jobId, hint);
    this.#gauges();
    this.#pump();
  }

  /**
   * Stops a job the database has just marked cancelled: a queued one is forgotten (its terminal event goes out
   * here), a running one is aborted (the model drops it at its next step).
   */
  cancelled(jobId: string): void {
    const running = this.#running.get(jobId);
    if (running !== undefined) {
      running.reason = 'cancelled';
      running.controller.abort(new Error('cancelled'));
      return;
    }
    if (this.#queued.delete(jobId)) this.#gauges();
    this.#hints.delete(jobId);
    this.events.publish({ jobId, terminal: true, progress: { stage: 'DONE', done: 0, total: 0 } });
  }

  /**
   * Stops taking jobs and waits up to `timeoutMs` for the running ones; those still running then are aborted and
   * requeued for the next start. Queued jobs stay queued in the database.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#sweeper);
    const all = () => Promise.all([...this.#running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const running of this.#running.values()) {
        running.reason = 'shutdown';
        running.controller.abort(new Error('shutdown'));
      }
      await all();
    }
  }

  #gauges(): void {
    this.metrics.queueDepth.set(this.#queued.size);
    this.metrics.jobs.set({ status: 'queued' }, this.#queued.size);
    this.metrics.jobs.set({ status: 'running' }, this.#running.size);
  }

  #pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    void (async () => {
      try {
        do {
          this.#again = false;
          while (
            !this.#stopped &&
            this.#claiming === 0 &&
            this.#running.size < this.options.concurrency &&
            this.#queued.size > 0
          ) {
            const job = await claimNextJob(this.database, this.workerId, { leaseMs: this.#leaseMs });
            if (job === null) {
              this.#queued.clear();
              break;
            }
            this.#queued.delete(job.id);
            this.#start(job);
          }
        } while (this.#again && !this.#stopped);
      } catch (error) {
        this.logger.error({ err: error }, 'claiming a job failed; retrying in a second');
        setTimeout(() => this.#pump(), 1000).unref();
      } finally {
        this.#pumping = false;
        this.#gauges();
      }
    })();
  }

  #start(job: ClaimedJob): void {
    const running = this.#reserve(job.userId, job.id);
    const hint = this.#hints.get(job.id);
    this.#hints.delete(job.id);
    const progress = this.#progress(() => job.id);
    progress.publish({ stage: 'QUEUED', done: 0, total: 0 });
    const result = (async () => {
      const turn = hint?.turn ?? (await getTurn(this.database, job.userId, job.turnId));
      return this.#execute(turn, job.userId, running.controller.signal, progress.onProgress, hint?.inputTokens);
    })();
    running.done = this.#finish(job, running, result, progress, hint?.turn).finally(() => this.#release(job.id));
  }

  /**
   * The fast path of a request that waits for its answer: when a slot is free and nothing is queued, the model
   * starts at once on what the request already holds, while the request writes its turn and job; `attach` then
   * claims exactly that job and finishes it as any other, `abandon` stops the model when writing failed. Null when
   * the request must queue.
   */
  startEarly(userId: string, spec: JobSpec): EarlyRun | null {
    if (this.#stopped || this.#queued.size > 0 || this.#running.size >= this.options.concurrency) return null;
    const key = `early:${Math.random().toString(36).slice(2)}`;
    const running = this.#reserve(userId, key);
    // Settles when the run has fully ended (written, or dropped), whichever way it goes: what drain() waits for.
    let finished!: () => void;
    running.done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    this.#claiming += 1;
    let claimSettled = false;
    const settleClaim = () => {
      if (claimSettled) return;
      claimSettled = true;
      this.#claiming -= 1;
      this.#pump();
    };
    let jobId: string | undefined;
    const progress = this.#progress(() => jobId);
    const result = this.#execute(spec, userId, running.controller.signal, progress.onProgress, spec.inputTokens);
    result.catch(() => undefined);
    this.#gauges();
    return {
      claim: { workerId: this.workerId, leaseMs: this.#leaseMs },
      attach: (job: ClaimedJob, turn: DbTurn) => {
        const id = job.id;
        jobId = id;
        this.#running.delete(key);
        this.#running.set(id, running);
        // The row was written running for this worker: nothing to claim, and the queue may be pumped again.
        settleClaim();
        this.#finish(job, running, result, progress, turn)
          .catch((error: unknown) => this.logger.error({ err: error, jobId: id }, 'an early run failed unexpectedly'))
          .finally(() => {
            this.#release(id);
            finished();
          });
      },
      abandon: () => {
        settleClaim();
        running.reason ??= 'cancelled';
        running.controller.abort(new Error('abandoned'));
        void result
          .catch(() => undefined)
          .finally(() => {
            this.#release(key);
            finished();
          });
      },
    };
  }

  #reserve(userId: string, key: string): Running {
    const running: Running = { userId, controller: new AbortController(), reason: null, done: Promise.resolve() };
    this.#running.set(key, running);
    return running;
  }

  #release(key: string): void {
    this.#running.delete(key);
    this.#gauges();
    this.#pump();
  }

  /** Progress events of one job, throttled: stage changes always, steps at most every progressIntervalMs. */
  #progress(jobId: () => string | undefined): Progress {
    let lastSent = 0;
    let lastStage: JobProgress['stage'] = 'QUEUED';
    const publish = (progress: JobProgress, terminal = false, job?: DbJob, turn?: DbTurn) => {
      const id = jobId();
      if (id === undefined) return;
      const now = Date.now();
      if (!terminal && progress.stage === lastStage && now - lastSent < this.#progressMs && progress.done < progress.total) return;
      lastSent = now;
      lastStage = progress.stage;
      this.events.publish({ jobId: id, terminal, progress, ...(job === undefined ? {} : { job }), ...(turn === undefined ? {} : { turn }) });
    };
    const onProgress = (event: ProgressEvent) => publish({ stage: STAGES[event.stage], done: event.done, total: event.total });
    return { publish, onProgress };
  }

  /** Waits for a claimed job's model run, renewing its lease, and writes its end; publishes the terminal event. */
  async #finish(
    job: ClaimedJob,
    running: Running,
    pending: Promise<TurnResult>,
    progress: Progress,
    turn?: DbTurn,
  ): Promise<void> {
    const log = this.logger.child({ jobId: job.id, userId: job.userId, task: job.task });
    const startedAt = Date.now();
    const lease = setInterval(() => {
      renewJobLease(this.database, job.id, this.workerId, { leaseMs: this.#leaseMs }).catch((error: unknown) => {
        // INVALID_STATE: the job was cancelled (maybe by another process) or recovered; stop working on it.
        if ((error as { code?: unknown }).code === 'INVALID_STATE') {
          running.reason ??= 'cancelled';
          running.controller.abort(new Error('cancelled'));
        } else log.warn({ err: error }, 'renewing the job lease failed');
      });
    }, Math.max(1000, Math.floor(this.#leaseMs / 3)));
    lease.unref();
    let ended: DbJob | undefined;
    let endedTurn: DbTurn | undefined;
    try {
      const result = await pending;
      const finished = await finishJob(this.database, job.id, this.workerId, job, result);
      ended = finished.job;
      // The next request often edits or asks about the image just made: keep its tokens.
      finished.turn.outputImages.forEach((image, index) => {
        const made = result.outputImages?.[index];
        if (made !== undefined) this.images.set(job.userId, image.id, { tokens: made.tokens, scale: made.scale });
      });
      // The turn as stored now, from what the request wrote and what finishJob returned: no read-back.
      if (turn !== undefined) endedTurn = { ...turn, ...finished.turn };
      const t = result.timings as unknown as Timings;
      this.metrics.jobsFinished.inc({ task: job.task, status: 'succeeded' });
      this.metrics.jobLatency.observe({ task: job.task }, (Date.now() - job.createdAt.getTime()) / 1000);
      for (const stage of ['encode', 'prefill', 'decode', 'detokenize', 'vqDecode', 'queued'] as const) {
        this.metrics.stageLatency.observe({ task: job.task, stage }, t[stage] / 1000);
      }
      this.metrics.tokens.inc({ task: job.task }, t.decodeTokens);
      const decodeSeconds = (t.prefill + t.decode) / 1000;
      if (decodeSeconds > 0) this.metrics.tokensPerSecond.observe({ task: job.task }, t.decodeTokens / decodeSeconds);
      log.info({ ms: Date.now() - startedAt, tokens: t.decodeTokens }, 'job succeeded');
    } catch (error) {
      ended = await this.#fail(job, running, error, log);
    } finally {
      clearInterval(lease);
      progress.publish({ stage: 'DONE', done: 1, total: 1 }, true, ended, endedTurn);
    }
  }

  async #fail(job: ClaimedJob, running: Running, error: unknown, log: Logger): Promise<DbJob | undefined> {
    const dbCode = (error as { name?: unknown; code?: unknown }).name === 'DbError' ? (error as { code: string }).code : undefined;
    try {
      if (running.reason === 'cancelled' || dbCode === 'INVALID_STATE') {
        // Already marked cancelled in the database by cancelJob.
        this.metrics.jobsFinished.inc({ task: job.task, status: 'cancelled' });
        log.info('job cancelled');
        return undefined;
      }
      if (running.reason === 'shutdown') {
        await failJob(this.database, job.id, this.workerId, {
          code: 'INTERRUPTED',
          message: 'the server shut down while the job ran',
          retry: true,
        });
        log.info('job interrupted by shutdown; requeued');
        return undefined;
      }
      const code = error instanceof ModelError ? (modelErrorCode(error) ?? 'MODEL_FAILED') : 'MODEL_FAILED';
      const message = error instanceof ModelError && modelErrorCode(error) !== null ? error.message : 'the model failed on this request';
      const failed = await failJob(this.database, job.id, this.workerId, { code, message });
      this.metrics.jobsFinished.inc({ task: job.task, status: 'failed' });
      if (code === 'MODEL_FAILED') log.error({ err: error }, 'job failed');
      else log.info({ code, message }, 'job refused by the model');
      return failed;
    } catch (writeError) {
      log.error({ err: writeError, cause: error }, 'recording the job failure failed; crash recovery will take it');
      return undefined;
    }
  }

  /** Runs one turn on the model and makes the result the database stores. */
  async #execute(
    turn: JobSpec,
    userId: string,
    signal: AbortSignal,
    onProgress: (event: ProgressEvent) => void,
    knownInputTokens?: ImageWithViews,
  ): Promise<TurnResult> {
    const info = this.model.info();
    const s = turn.settings;
    const seed = s.seed;
    const history = turn.parentId === null ? [] : await this.history(userId, turn.parentId);
    const input = turn.inputImages[0];
    const inputTokens = knownInputTokens ?? (input === undefined ? undefined : await this.#tokens(userId, input.id));
    const common = { history, signal, onProgress, ...(seed === undefined ? {} : { seed }) };
    const modelFields = { modelName: info.name, modelVersion: info.version };
    switch (turn.task) {
      case 'understand': {
        if (inputTokens === undefined) throw new Error('an understand turn without an input image');
        const result = await this.model.understand({
          ...common,
          prompt: turn.prompt,
          image: inputTokens,
          ...(s.sampling === undefined ? {} : { sampling: s.sampling }),
        });
        return { answer: result.text, timings: { ...result.timings }, seed: result.seed, ...modelFields };
      }
      case 'generate':
      case 'edit': {
        const request = {
          ...common,
          prompt: turn.prompt,
          ...(s.scale === undefined ? {} : { scale: s.scale }),
          ...(s.sampling === undefined ? {} : { sampling: s.sampling }),
          ...(s.detokSampling === undefined ? {} : { detokSampling: s.detokSampling }),
          ...(s.selfCheck === true ? { selfCheck: true } : {}),
        };
        let result;
        if (turn.task === 'generate') result = await this.model.generate(request);
        else {
          if (inputTokens === undefined) throw new Error('an edit turn without an input image');
          result = await this.model.edit({ ...request, image: inputTokens });
        }
        const image = result.image;
        return {
          answer: null,
          outputImages: [
            {
              origin: turn.task === 'generate' ? ('generated' as const) : ('edited' as const),
              tokens: image.tokens,
              scale: image.scale,
              codebookSize: this.model.manifest.taTok.codebookSize,
              width: image.width,
              height: image.height,
              renderSeed: result.seed,
              png: image.png,
              ...modelFields,
            },
          ],
          timings: { ...result.timings },
          seed: result.seed,
          ...modelFields,
        };
      }
    }
  }

  /**
   * The runtime's history for a turn that follows `parentId`: the succeeded turns of the branch from its root,
   * each as the user's request (prompt, input image tokens) and the model's answer (text or image tokens).
   */
  async history(userId: string, parentId: string): Promise<Turn[]> {
    const path = await getTurnPath(this.database, userId, parentId);
    const turns: Turn[] = [];
    for (const step of path) {
      if (step.status !== 'succeeded') continue;
      const input = step.inputImages[0];
      const output = step.outputImages[0];
      turns.push({
        role: 'user',
        task: step.task,
        text: step.prompt,
        ...(input === undefined ? {} : { image: withoutViews(await this.#tokens(userId, input.id)) }),
      });
      turns.push({
        role: 'assistant',
        ...(step.answer === null ? {} : { text: step.answer }),
        ...(output === undefined ? {} : { image: withoutViews(await this.#tokens(userId, output.id)) }),
      });
    }
    return turns;
  }

  /** An image's tokens with its views (an upload's; the model reads them when the image is asked about). */
  async #tokens(userId: string, imageId: string): Promise<ImageWithViews> {
    const known = this.images.get(userId, imageId);
    if (known !== undefined) return known;
    const image = await getImage(this.database, userId, imageId);
    const tokens = { tokens: image.tokens, scale: image.scale, views: image.views };
    this.images.set(userId, imageId, tokens);
    return tokens;
  }
}

function controller(running: Running): AbortSignal {
  return running.controller.signal;
}

/** An earlier turn's image as history: the prompt holds its tokens only (views are for the image asked about). */
function withoutViews(image: ImageWithViews): ImageTokens {
  return { tokens: image.tokens, scale: image.scale };
}
