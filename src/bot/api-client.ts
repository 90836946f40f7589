/**
 * The bot's only way to Dialect: the public GraphQL API (schema.graphql) over HTTP with `fetch`, and job progress
 * over graphql-ws (polling `job(id)` when the WebSocket cannot be used). Every call acts for one Discord user: the
 * bot's key (scope `act_as_discord`) plus `X-Dialect-Discord-User`, so history, limits and rate limits are that
 * person's own.
 *
 * Failures come out as three error classes that `errors.ts` turns into friendly text: `ApiUserError` (an expected
 * refusal with a stable code, e.g. QUEUE_FULL), `ApiUnavailableError` (the API cannot be reached or is not serving)
 * and `ApiFaultError` (the API answered with an unexpected top-level error).
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** The Discord user a call acts for. */
export interface Actor {
  discordId: string;
  /** Display name, stored as the Dialect user's name on first use. */
  name: string;
}

export type UserErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_IMAGE'
  | 'IMAGE_TOO_LARGE'
  | 'PROMPT_TOO_LONG'
  | 'NOT_FOUND'
  | 'QUEUE_FULL'
  | 'RATE_LIMITED'
  | 'CANCELLED'
  | 'MODEL_FAILED';
export type Task = 'UNDERSTAND' | 'GENERATE' | 'EDIT';
export type TurnStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
export type JobStage = 'QUEUED' | 'ENCODE' | 'PREFILL' | 'DECODE' | 'DETOKENIZE' | 'VQ_DECODE' | 'DONE';

export interface UserError {
  code: UserErrorCode;
  message: string;
  field?: string[] | null;
}

export interface JobState {
  id: string;
  status: TurnStatus;
  task: Task;
  stage: JobStage;
  done: number;
  total: number;
  error: UserError | null;
}

export interface ImageInfo {
  id: string;
  width: number;
  height: number;
  scale: number;
  grid: number;
  /** Relative to the API's URL, signed for the acting user. */
  url: string;
  origin: 'UPLOAD' | 'GENERATED' | 'EDITED';
}

/** The image sampling a bot command may choose (the API's ImageSamplingInput). */
export interface ImageSampling {
  promptGuidance?: number;
  selfCheck?: boolean;
}

export interface TurnResult {
  id: string;
  task: Task;
  status: TurnStatus;
  prompt: string;
  text: string | null;
  image: ImageInfo | null;
  inputImage: ImageInfo | null;
  conversation: { id: string; title: string };
  settings: { seed: number; scale: number | null; promptGuidance: number | null; selfCheck: boolean | null };
  error: UserError | null;
  job: JobState | null;
}

export interface ImageTokens extends ImageInfo {
  tokens: number[];
  codebookSize: number;
  turn: { id: string; conversation: { id: string } } | null;
}

export interface ConversationSummary {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
  turns: { id: string; task: Task; status: TurnStatus; prompt: string; text: string | null; image: { id: string; url: string } | null; createdAt: string }[];
}

export interface ConversationPage {
  items: ConversationSummary[];
  endCursor: string | null;
  hasNextPage: boolean;
}

export interface ServerLimits {
  maxUploadBytes: number;
  maxUploadPixels: number;
  maxPromptChars: number;
  maxPageSize: number;
}

export interface ImageInput {
  id?: string;
  base64?: string;
}

/** The new turn and its job, as answered at once (`wait: false`). */
export interface StartedTurn {
  turnId: string;
  job: JobState;
}

export class ApiUserError extends Error {
  override readonly name = 'ApiUserError';
  constructor(
    readonly code: UserErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export class ApiUnavailableError extends Error {
  override readonly name = 'ApiUnavailableError';
}

export class ApiFaultError extends Error {
  override readonly name = 'ApiFaultError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:4000` (GraphQL at `/graphql`). */
  url: string;
  /** The bot's API key, with the `act_as_discord` scope. */
  apiKey: string | undefined;
  /** Per-request timeout. Defaults to 30,000 ms. */
  timeoutMs?: number;
  /** Interval of `job(id)` polling when the subscription is unavailable. Defaults to 500 ms. */
  pollIntervalMs?: number;
}

const JOB_FIELDS = 'id status task stage done total error { code message }';
const IMAGE_FIELDS = 'id width height scale grid url origin';
const TURN_FIELDS = `id task status prompt text conversation { id title } settings { seed scale promptGuidance selfCheck } error { code message }
  image { ${IMAGE_FIELDS} } inputImage { ${IMAGE_FIELDS} } job { ${JOB_FIELDS} }`;
const STARTED = `turn { id } job { ${JOB_FIELDS} } errors { code message field }`;

export class DialectApi {
  readonly url: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  readonly #pollIntervalMs: number;
  #limits: { value: ServerLimits; at: number } | undefined;

  constructor(options: ApiClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#pollIntervalMs = options.pollIntervalMs ?? 500;
  }

  // ------------------------------------------------------------------------------------------------ mutations

  generate(
    actor: Actor,
    input: { prompt: string; scale?: number; seed?: number; conversationId?: string; parentTurnId?: string; sampling?: ImageSampling },
  ): Promise<StartedTurn> {
    return this.#start(actor, 'generate', 'GenerateInput', input);
  }

  understand(actor: Actor, input: { prompt: string; image: ImageInput; conversationId?: string; parentTurnId?: string }): Promise<StartedTurn> {
    return this.#start(actor, 'understand', 'UnderstandInput', input);
  }

  edit(
    actor: Actor,
    input: { prompt: string; image: ImageInput; conversationId?: string; parentTurnId?: string; seed?: number; sampling?: ImageSampling },
  ): Promise<StartedTurn> {
    return this.#start(actor, 'edit', 'EditInput', input);
  }

  reroll(actor: Actor, turnId: string): Promise<StartedTurn> {
    return this.#start(actor, 'reroll', 'RerollInput', { turnId });
  }

  async cancelJob(actor: Actor, jobId: string): Promise<JobState> {
    const data = await this.request<{ cancelJob: { job: JobState | null; errors: UserError[] } }>(
      actor,
      `mutation CancelJob($id: ID!) { cancelJob(id: $id) { job { ${JOB_FIELDS} } errors { code message } } }`,
      { id: jobId },
    );
    throwUserErrors(data.cancelJob.errors);
    return data.cancelJob.job as JobState;
  }

  async #start(actor: Actor, field: string, inputType: string, input: object): Promise<StartedTurn> {
    const data = await this.request<Record<string, { turn: { id: string } | null; job: JobState | null; errors: UserError[] }>>(
      actor,
      `mutation Start($input: ${inputType}!) { ${field}(input: $input) { ${STARTED} } }`,
      { input: { ...input, wait: false } },
    );
    const payload = data[field] as { turn: { id: string } | null; job: JobState | null; errors: UserError[] };
    throwUserErrors(payload.errors);
    if (payload.turn === null || payload.job === null) throw new ApiFaultError('INTERNAL_SERVER_ERROR', `${field} answered no turn`);
    return { turnId: payload.turn.id, job: payload.job };
  }

  // ------------------------------------------------------------------------------------------------ queries

  async turn(actor: Actor, id: string): Promise<TurnResult> {
    const data = await this.request<{ turn: TurnResult | null }>(actor, `query Turn($id: ID!) { turn(id: $id) { ${TURN_FIELDS} } }`, { id });
    if (data.turn === null) throw new ApiUserError('NOT_FOUND', 'no such turn');
    return data.turn;
  }

  async image(actor: Actor, id: string): Promise<ImageTokens> {
    const data = await this.request<{ image: ImageTokens | null }>(
      actor,
      `query Image($id: ID!) { image(id: $id) { ${IMAGE_FIELDS} tokens codebookSize turn { id conversation { id } } } }`,
      { id },
    );
    if (data.image === null) throw new ApiUserError('NOT_FOUND', 'no such image');
    return data.image;
  }

  async job(actor: Actor, id: string): Promise<JobState> {
    const data = await this.request<{ job: JobState | null }>(actor, `query Job($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id });
    if (data.job === null) throw new ApiUserError('NOT_FOUND', 'no such job');
    return data.job;
  }

  async conversations(actor: Actor, first: number, after: string | undefined): Promise<ConversationPage> {
    const data = await this.request<{
      conversations: { edges: { node: ConversationSummary }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
    }>(
      actor,
      // The page size is a literal: the server's cost estimate counts a variable `first` as its largest page.
      `query History($after: String) { conversations(first: ${Math.max(1, Math.min(100, Math.trunc(first)))}, after: $after) {
        edges { node { id title createdAt updatedAt turns { id task status prompt text image { id url } createdAt } } }
        pageInfo { hasNextPage endCursor } } }`,
      { after: after ?? null },
    );
    return {
      items: data.conversations.edges.map((e) => e.node),
      endCursor: data.conversations.pageInfo.endCursor,
      hasNextPage: data.conversations.pageInfo.hasNextPage,
    };
  }

  /** The limits last read, if any (for checks that must not wait on the network). */
  knownLimits(): ServerLimits | undefined {
    return this.#limits?.value;
  }

  /** The server's limits, cached for a minute (they change only with a restart). Without an actor: as the key's user. */
  async limits(actor?: Actor): Promise<ServerLimits> {
    if (this.#limits !== undefined && Date.now() - this.#limits.at < 60_000) return this.#limits.value;
    const data = await this.request<{ limits: ServerLimits }>(actor, 'query Limits { limits { maxUploadBytes maxUploadPixels maxPromptChars maxPageSize } }', {});
    this.#limits = { value: data.limits, at: Date.now() };
    return data.limits;
  }

  // ------------------------------------------------------------------------------------------------ progress

  /**
   * Follows a job until it finishes, calling `onProgress` with each state (subscription `jobProgress`; polling
   * `job(id)` when the WebSocket fails). Resolves with the final state.
   */
  async follow(actor: Actor, jobId: string, onProgress: (job: JobState) => void): Promise<JobState> {
    let last: JobState | undefined;
    try {
      last = await this.#subscribe(actor, jobId, (job) => {
        last = job;
        onProgress(job);
      });
    } catch {
      // The WebSocket failed (a proxy without upgrades, a dropped connection): poll instead.
    }
    while (last === undefined || !isFinished(last.status)) {
      if (last !== undefined) await new Promise((resolve) => setTimeout(resolve, this.#pollIntervalMs));
      last = await this.job(actor, jobId);
      onProgress(last);
    }
    return last;
  }

  async #subscribe(actor: Actor, jobId: string, onEvent: (job: JobState) => void): Promise<JobState | undefined> {
    const client = createClient({
      url: `${this.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { ...this.#headers(actor) },
      lazy: true,
      retryAttempts: 0,
      connectionAckWaitTimeout: this.#timeoutMs,
    });
    let last: JobState | undefined;
    try {
      const events = client.iterate<{ jobProgress: JobState }>({
        query: `subscription Progress($id: ID!) { jobProgress(id: $id) { ${JOB_FIELDS} } }`,
        variables: { id: jobId },
      });
      for await (const event of events) {
        if (event.errors !== undefined && event.errors.length > 0) throw new Error(event.errors[0]?.message);
        if (event.data?.jobProgress === undefined) continue;
        last = event.data.jobProgress;
        onEvent(last);
        if (isFinished(last.status)) break;
      }
      return last;
    } finally {
      await client.dispose();
    }
  }

  // ------------------------------------------------------------------------------------------------ transport

  /** Downloads a PNG the API signed for the actor (`Image.url`). */
  async download(relativeUrl: string): Promise<Buffer> {
    let response: Response;
    try {
      response = await fetch(new URL(relativeUrl, `${this.url}/`), { signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw new ApiUnavailableError(`the image could not be fetched: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok) {
      if (response.status >= 500) throw new ApiUnavailableError(`the image route answered ${response.status}`);
      throw new ApiFaultError('IMAGE_URL', `the image route answered ${response.status}`);
    }
    return Buffer.from(await response.arrayBuffer());
  }

  /** Runs one operation for the actor; top-level errors become ApiFaultError (or ApiUserError for rate limits). */
  async request<T>(actor: Actor | undefined, query: string, variables: Record<string, unknown>): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...this.#headers(actor),
        },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new ApiUnavailableError(`the API at ${this.url} cannot be reached: ${(error as Error).message}`, { cause: error });
    }
    if (response.status === 502 || response.status === 503 || response.status === 504) {
      throw new ApiUnavailableError(`the API answered ${response.status}`);
    }
    let body: { data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] };
    try {
      body = (await response.json()) as typeof body;
    } catch (error) {
      throw new ApiUnavailableError(`the API answered ${response.status} without JSON`, { cause: error });
    }
    const first = body.errors?.[0];
    if (first !== undefined) {
      const code = first.extensions?.code ?? 'INTERNAL_SERVER_ERROR';
      if (code === 'RATE_LIMITED' || response.status === 429) throw new ApiUserError('RATE_LIMITED', first.message);
      if (code === 'SERVICE_UNAVAILABLE') throw new ApiUnavailableError(first.message);
      throw new ApiFaultError(code, first.message);
    }
    if (body.data === undefined || body.data === null) throw new ApiFaultError('INTERNAL_SERVER_ERROR', `the API answered ${response.status} with no data`);
    return body.data;
  }

  #headers(actor: Actor | undefined): Record<string, string> {
    return {
      ...(this.#apiKey === undefined ? {} : { authorization: `Bearer ${this.#apiKey}` }),
      ...(actor === undefined ? {} : { 'x-dialect-discord-user': actor.discordId, 'x-dialect-discord-name': encodeURIComponent(actor.name) }),
    };
  }
}

export function isFinished(status: TurnStatus): boolean {
  return status === 'SUCCEEDED' || status === 'FAILED' || status === 'CANCELLED';
}

function throwUserErrors(errors: UserError[]): void {
  const first = errors[0];
  if (first !== undefined) throw new ApiUserError(first.code, first.message);
}
