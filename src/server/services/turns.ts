/**
 * Model requests (understand, generate, edit, reroll): checks, admission (rate, per-user jobs, queue), then a turn
 * and its queued job in one transaction, then (by default) waiting for the job to end. Expected failures are thrown
 * as UserFailure with the input field at fault.
 */
import { randomInt } from 'node:crypto';
import type { Database } from '../../db/client.ts';
import { addTurn, getTurn, type Turn as DbTurn, type TurnImageInput } from '../../db/conversations.ts';
import { getImage } from '../../db/images.ts';
import type { Job } from '../../db/jobs.ts';
import { getLatestTurnId } from '../../db/server-queries.ts';
import { startTurn } from '../../db/turn-writes.ts';
import { editingOf, type ImageWithViews, type Model, storedViewScales, understandingOf } from '../../model/index.ts';
import type { Limits } from '../config.ts';
import { toUserError, UserFailure } from '../errors.ts';
import type { ImageInput, ImageSamplingInput, TextSamplingInput } from '../graphql/generated.ts';
import type { JobEvents } from '../jobs/events.ts';
import type { JobHint, JobRunner } from '../jobs/runner.ts';
import type { RateLimiter } from '../limits.ts';
import type { ServerMetrics } from '../metrics.ts';
import { ImageTokenCache } from './image-cache.ts';
import { readUpload } from './uploads.ts';

/** Seeds fit GraphQL's Int: 0 … 2^31 − 1. */
export const MAX_API_SEED = 2 ** 31 - 1;

export type Task = 'understand' | 'generate' | 'edit';

export interface TurnRequest {
  task: Task;
  prompt: string;
  image?: ImageInput | null;
  conversationId?: string | null;
  parentTurnId?: string | null;
  scale?: number | null;
  seed?: number | null;
  textSampling?: TextSamplingInput | null;
  imageSampling?: ImageSamplingInput | null;
  wait?: boolean | null;
}

export interface TurnOutcome {
  turnId: string;
  jobId: string;
  /** The job's row as it ended (when the request waited for it). */
  job?: Job;
  /** The turn as it ended (when the request waited for it and this process ran it): the payload needs no read. */
  turn?: DbTurn;
}

type Settings = {
  seed: number;
  scale?: number;
  sampling?: Record<string, number>;
  detokSampling?: Record<string, number>;
  selfCheck?: boolean;
};

export class TurnService {
  #draining = false;
  /** Requests admitted but not yet handed to the runner, per user and in all. */
  readonly #admitting = new Map<string, number>();
  #admittingTotal = 0;

  constructor(
    private readonly database: Database,
    private readonly model: Model,
    private readonly runner: JobRunner,
    private readonly events: JobEvents,
    private readonly limits: Limits,
    private readonly rate: RateLimiter,
    private readonly metrics: ServerMetrics,
    /** Tokens of images by user and id (shared with the runner): see image-cache.ts. */
    private readonly images: ImageTokenCache = new ImageTokenCache(),
  ) {}

  /** Refuses new model requests (shutdown). */
  stopAccepting(): void {
    this.#draining = true;
  }

  /** Starts a model request for `userId`; resolves when the job ends (or at once with `wait: false`). */
  async request(userId: string, rateKey: string, request: TurnRequest): Promise<TurnOutcome> {
    try {
      return await this.#request(userId, rateKey, request);
    } catch (error) {
      const userError = toUserError(error);
      if (userError !== null) this.metrics.jobsRefused.inc({ task: request.task, code: userError.code });
      throw error;
    }
  }

  async #request(userId: string, rateKey: string, request: TurnRequest): Promise<TurnOutcome> {
    const { task } = request;
    this.#checkOpen();
    this.#takeRate(rateKey);
    const settings = this.#settings(request);
    this.#checkPrompt(request.prompt);
    const admission = this.#admit(userId);
    try {
      const image = task === 'generate' ? undefined : await this.#image(userId, request.image, settings.scale ?? this.#uploadScale(task));
      const { conversation, parentId } = await this.#place(userId, request);
      const wait = request.wait ?? true;
      // A request that waits starts on the model at once when the runner is idle enough, while its turn is written.
      const early = wait
        ? this.runner.startEarly(userId, {
            task,
            prompt: request.prompt,
            settings: { v: 1, ...settings },
            parentId,
            inputImages: [],
            ...(image === undefined ? {} : { inputTokens: image.tokens }),
          })
        : null;
      // From here the runner counts the job (as running, or once queued below).
      if (early !== null) admission.release();
      let started;
      try {
        // One statement: the conversation (when new), the turn, its input image and its job (running for the
        // runner when it started early, else queued).
        started = await startTurn(this.database, userId, {
          conversation,
          parentId,
          task,
          prompt: request.prompt,
          settings,
          ...(image === undefined ? {} : { inputImage: image.input }),
          ...(early === null ? {} : { claim: early.claim }),
        });
      } catch (error) {
        early?.abandon();
        if ((error as { code?: unknown }).code === 'NOT_FOUND' && /image/.test((error as Error).message)) {
          throw new UserFailure('NOT_FOUND', 'no such image', ['input', 'image', 'id']);
        }
        if ((error as { code?: unknown }).code === 'NOT_FOUND') {
          throw new UserFailure('NOT_FOUND', /parent/.test((error as Error).message) ? 'no such turn' : 'no such conversation', [
            'input',
            /parent/.test((error as Error).message) ? 'parentTurnId' : 'conversationId',
          ]);
        }
        throw error;
      }
      const { turn, job } = started;
      const stored = turn.inputImages[0];
      if (image !== undefined && stored !== undefined) this.images.set(userId, stored.id, image.tokens);
      if (early !== null) {
        const ended = this.events.terminal(job.id);
        early.attach(job, turn);
        const event = await ended;
        return { turnId: turn.id, jobId: job.id, ...(event.job === undefined ? {} : { job: event.job }), ...(event.turn === undefined ? {} : { turn: event.turn }) };
      }
      const hint = { turn, ...(image === undefined ? {} : { inputTokens: image.tokens }) };
      return await this.#run(userId, turn.id, job.id, wait, admission, hint);
    } finally {
      admission.release();
    }
  }

  /** Runs a turn again with another seed: a sibling of the original, same task, prompt, images and settings. */
  async reroll(userId: string, rateKey: string, input: { turnId: string; seed?: number | null; wait?: boolean | null }): Promise<TurnOutcome> {
    const original = await getTurn(this.database, userId, input.turnId).catch((error: unknown) => {
      throw toUserError(error) === null ? error : new UserFailure('NOT_FOUND', 'no such turn', ['input', 'turnId']);
    });
    this.#checkOpen();
    this.#takeRate(rateKey);
    const seed = checkSeed(input.seed) ?? randomInt(0, MAX_API_SEED + 1);
    const admission = this.#admit(userId);
    try {
      const { v: _v, ...rest } = original.settings;
      const { turn, jobId } = await addTurn(this.database, userId, {
        conversationId: original.conversationId,
        parentId: original.parentId,
        task: original.task,
        prompt: original.prompt,
        settings: { ...rest, seed },
        inputImages: original.inputImages.map((image) => ({ imageId: image.id })),
      });
      if (jobId === null) throw new Error('addTurn made no job');
      return await this.#run(userId, turn.id, jobId, input.wait ?? true, admission);
    } finally {
      admission.release();
    }
  }

  #checkOpen(): void {
    if (this.#draining) throw new UserFailure('UNAVAILABLE', 'the server is shutting down; retry in a moment');
  }

  #takeRate(rateKey: string): void {
    const waitMs = this.rate.take(rateKey);
    if (waitMs > 0) throw new UserFailure('RATE_LIMITED', `too many requests; retry in ${Math.ceil(waitMs / 1000)} s`);
  }

  /**
   * Checks the per-user job cap and the queue, counting requests admitted but not yet handed to the runner (they
   * are still writing their turn), so that concurrent requests cannot slip past either limit together. `release`
   * once the runner counts the job (or the request failed); releasing twice is harmless.
   */
  #admit(userId: string): { release(): void } {
    const pendingOfUser = this.#admitting.get(userId) ?? 0;
    if (this.runner.activeJobs(userId) + pendingOfUser >= this.limits.maxActiveJobsPerUser) {
      throw new UserFailure(
        'RATE_LIMITED',
        `you have ${this.limits.maxActiveJobsPerUser} jobs queued or running, the most allowed; wait for one to end`,
      );
    }
    if (this.runner.queueDepth + this.#admittingTotal >= this.limits.maxQueue) {
      throw new UserFailure('QUEUE_FULL', 'the server is busy (its queue is full); retry later');
    }
    this.#admitting.set(userId, pendingOfUser + 1);
    this.#admittingTotal += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#admittingTotal -= 1;
        const left = (this.#admitting.get(userId) ?? 1) - 1;
        if (left <= 0) this.#admitting.delete(userId);
        else this.#admitting.set(userId, left);
      },
    };
  }

  async #run(
    userId: string,
    turnId: string,
    jobId: string,
    wait: boolean,
    admission: { release(): void },
    hint?: JobHint,
  ): Promise<TurnOutcome> {
    const ended = wait ? this.events.terminal(jobId) : undefined;
    this.runner.enqueue(jobId, userId, hint);
    admission.release();
    if (ended === undefined) return { turnId, jobId };
    const event = await ended;
    return { turnId, jobId, ...(event.job === undefined ? {} : { job: event.job }), ...(event.turn === undefined ? {} : { turn: event.turn }) };
  }

  #checkPrompt(prompt: string): void {
    if (prompt.trim() === '') throw new UserFailure('INVALID_INPUT', 'the prompt is empty', ['input', 'prompt']);
    if (prompt.length > this.limits.maxPromptChars) {
      throw new UserFailure(
        'PROMPT_TOO_LONG',
        `the prompt has ${prompt.length} characters, more than the limit of ${this.limits.maxPromptChars}`,
        ['input', 'prompt'],
      );
    }
  }

  #settings(request: TurnRequest): Settings {
    const seed = checkSeed(request.seed) ?? randomInt(0, MAX_API_SEED + 1);
    const settings: Settings = { seed };
    if (request.scale != null) {
      const scales = this.model.manifest.scales.map((s) => s.scale);
      if (!scales.includes(request.scale)) {
        throw new UserFailure('INVALID_INPUT', `scale must be one of ${scales.join(', ')}`, ['input', 'scale']);
      }
      settings.scale = request.scale;
    }
    const maxTokens = this.model.manifest.llm.maxPositions;
    const sampling: Record<string, number> = {};
    const detok: Record<string, number> = {};
    const put = (target: Record<string, number>, name: string, value: number | null | undefined, min: number, max: number, field: string, integer = false) => {
      if (value == null) return;
      if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
        throw new UserFailure('INVALID_INPUT', `${field} must be ${integer ? 'an integer ' : ''}between ${min} and ${max}`, ['input', 'sampling', field]);
      }
      target[name] = value;
    };
    const text = request.textSampling;
    if (text != null) {
      put(sampling, 'temperature', text.temperature, 0, 10, 'temperature');
      put(sampling, 'topK', text.topK, 0, 1_000_000, 'topK', true);
      put(sampling, 'topP', text.topP, 0.000001, 1, 'topP');
      put(sampling, 'repetitionPenalty', text.repetitionPenalty, 0.01, 10, 'repetitionPenalty');
      put(sampling, 'maxNewTokens', text.maxNewTokens, 1, maxTokens, 'maxNewTokens', true);
    }
    const image = request.imageSampling;
    if (image != null) {
      put(sampling, 'temperature', image.temperature, 0, 10, 'temperature');
      put(sampling, 'topK', image.topK, 0, 1_000_000, 'topK', true);
      put(sampling, 'topP', image.topP, 0.000001, 1, 'topP');
      put(detok, 'cfgScale', image.cfgScale, 0, 50, 'cfgScale');
      put(sampling, 'cfgScale', image.promptGuidance, 0, 50, 'promptGuidance');
      if (image.selfCheck === true) {
        // Refused here rather than when the job runs (the runtime refuses it too).
        if (!this.model.info().selfCheck) {
          throw new UserFailure('INVALID_INPUT', 'this model cannot check its images (no self-check)', ['input', 'sampling', 'selfCheck']);
        }
        settings.selfCheck = true;
      }
    }
    if (Object.keys(sampling).length > 0) settings.sampling = sampling;
    if (Object.keys(detok).length > 0) settings.detokSampling = detok;
    return settings;
  }

  /**
   * The scale an upload is encoded at when the request names none: understanding's or editing's (a bundle may read
   * and edit images best at another scale than it generates them), as the model runtime does.
   */
  #uploadScale(task: Task): number {
    const manifest = this.model.manifest;
    return task === 'understand' ? understandingOf(manifest).scale : editingOf(manifest).scale;
  }

  /**
   * The input image: one of the user's stored images, or an upload encoded to tokens now, at `scale` and, as its
   * views, at the model's other reading scales (storedViewScales); its tokens and views are stored.
   */
  async #image(
    userId: string,
    image: ImageInput | null | undefined,
    scale: number,
  ): Promise<{ input: TurnImageInput; tokens: ImageWithViews }> {
    const hasId = image?.id != null;
    const hasBytes = image?.base64 != null;
    if (image == null || hasId === hasBytes) {
      throw new UserFailure('INVALID_INPUT', 'give exactly one of image.id and image.base64', ['input', 'image']);
    }
    if (hasId) {
      // Known tokens skip the read; startTurn still checks, in its one statement, that the image is the user's.
      const known = this.images.get(userId, image.id as string);
      if (known !== undefined) return { input: { imageId: image.id as string }, tokens: known };
      try {
        const stored = await getImage(this.database, userId, image.id as string);
        const tokens = { tokens: stored.tokens, scale: stored.scale, views: stored.views };
        this.images.set(userId, stored.id, tokens);
        return { input: { imageId: stored.id }, tokens };
      } catch (error) {
        if ((error as { code?: unknown }).code === 'NOT_FOUND') {
          throw new UserFailure('NOT_FOUND', 'no such image', ['input', 'image', 'id']);
        }
        throw error;
      }
    }
    const field = ['input', 'image', 'base64'];
    const upload = await readUpload(image.base64 as string, this.limits, field);
    let tokens;
    try {
      tokens = await this.model.encodeImageViews(upload.bytes, scale, storedViewScales(this.model.manifest, scale));
    } catch (error) {
      const userError = toUserError(error, field);
      if (userError !== null) throw new UserFailure(userError.code, userError.message, field);
      throw error;
    }
    const info = this.model.info();
    const input: TurnImageInput = {
      image: {
        origin: 'upload',
        tokens: tokens.tokens,
        scale: tokens.scale,
        views: tokens.views,
        codebookSize: this.model.manifest.taTok.codebookSize,
        width: upload.width,
        height: upload.height,
        modelName: info.name,
        modelVersion: info.version,
        png: upload.png,
      },
    };
    return { input, tokens };
  }

  /**
   * The conversation and parent turn of a new turn: given, the conversation's latest turn, or a new conversation
   * (written by startTurn with the turn).
   */
  async #place(userId: string, request: TurnRequest): Promise<{ conversation: { id: string } | { title: string }; parentId: string | null }> {
    if (request.conversationId == null) {
      if (request.parentTurnId != null) {
        const parent = await this.#turn(userId, request.parentTurnId, ['input', 'parentTurnId']);
        return { conversation: { id: parent.conversationId }, parentId: parent.id };
      }
      return { conversation: { title: titleOf(request.prompt) }, parentId: null };
    }
    let latest: string | null;
    try {
      latest = await getLatestTurnId(this.database, userId, request.conversationId);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'NOT_FOUND') {
        throw new UserFailure('NOT_FOUND', 'no such conversation', ['input', 'conversationId']);
      }
      throw error;
    }
    if (request.parentTurnId != null) {
      const parent = await this.#turn(userId, request.parentTurnId, ['input', 'parentTurnId']);
      if (parent.conversationId !== request.conversationId) {
        throw new UserFailure('NOT_FOUND', 'no such turn in the conversation', ['input', 'parentTurnId']);
      }
      return { conversation: { id: parent.conversationId }, parentId: parent.id };
    }
    return { conversation: { id: request.conversationId }, parentId: latest };
  }

  async #turn(userId: string, turnId: string, field: string[]) {
    try {
      return await getTurn(this.database, userId, turnId);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'NOT_FOUND') throw new UserFailure('NOT_FOUND', 'no such turn', field);
      throw error;
    }
  }
}

function checkSeed(seed: number | null | undefined): number | undefined {
  if (seed == null) return undefined;
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_API_SEED) {
    throw new UserFailure('INVALID_INPUT', `seed must be an integer between 0 and ${MAX_API_SEED}`, ['input', 'seed']);
  }
  return seed;
}

/** A new conversation's title: the start of its first prompt. */
function titleOf(prompt: string): string {
  const line = prompt.trim().replace(/\s+/g, ' ');
  return line.length <= 60 ? line : `${line.slice(0, 59)}…`;
}
