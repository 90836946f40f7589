/**
 * The page's only way to the server: the public GraphQL API, over HTTP POST /graphql for queries and mutations and
 * graphql-ws on the same path for `jobProgress`. The API key (when one is needed) lives in localStorage and goes in
 * `Authorization: Bearer <key>` (HTTP) or the connection params (WebSocket).
 */
import { type Client, createClient } from 'graphql-ws';

const KEY_STORAGE = 'dialect.apiKey';

export function storedKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null): void {
  if (key === null) localStorage.removeItem(KEY_STORAGE);
  else localStorage.setItem(KEY_STORAGE, key);
  resetSubscriptions();
}

/** A failure of a whole request: no or a bad key (UNAUTHENTICATED), the network, or a fault on the server. */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** An expected failure from a payload's `errors` (safe to show). */
export interface UserError {
  code: string;
  message: string;
  field?: string[] | null;
}

type Listener = () => void;
const unauthenticatedListeners = new Set<Listener>();
/** Called whenever the server answers UNAUTHENTICATED (the app then asks for a key). */
export function onUnauthenticated(listener: Listener): () => void {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

function authHeaders(): Record<string, string> {
  const key = storedKey();
  return key === null ? {} : { authorization: `Bearer ${key}` };
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch('graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...authHeaders() },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new RequestError('The server cannot be reached.', 'NETWORK');
  }
  let body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = await response.json();
  } catch {
    throw new RequestError(`The server answered ${response.status} without GraphQL.`, 'BAD_RESPONSE');
  }
  const first = body.errors?.[0];
  if (first !== undefined) {
    const code = first.extensions?.code ?? 'INTERNAL_SERVER_ERROR';
    if (code === 'UNAUTHENTICATED') for (const listener of unauthenticatedListeners) listener();
    throw new RequestError(first.message, code);
  }
  if (body.data === undefined) throw new RequestError('The server answered without data.', 'BAD_RESPONSE');
  return body.data;
}

let client: Client | undefined;

function wsClient(): Client {
  client ??= createClient({
    url: new URL('graphql', location.href).toString().replace(/^http/, 'ws'),
    connectionParams: () => authHeaders(),
    lazy: true,
    retryAttempts: 3,
  });
  return client;
}

function resetSubscriptions(): void {
  const old = client;
  client = undefined;
  void old?.dispose();
}

/** Subscribes to one operation; returns the unsubscribe function. */
export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  handlers: { next: (data: T) => void; error: (error: Error) => void; complete: () => void },
): () => void {
  return wsClient().subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors !== undefined && result.errors.length > 0) {
          handlers.error(new RequestError(result.errors[0]!.message, String(result.errors[0]!.extensions?.code ?? 'ERROR')));
        } else if (result.data !== undefined && result.data !== null) handlers.next(result.data as T);
      },
      error: (error) => handlers.error(error instanceof Error ? error : new RequestError('The live connection closed.', 'NETWORK')),
      complete: handlers.complete,
    },
  );
}

// ------------------------------------------------------------------------------------------------ types

export type Task = 'UNDERSTAND' | 'GENERATE' | 'EDIT';
export type TurnStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
export type JobStage = 'QUEUED' | 'ENCODE' | 'PREFILL' | 'DECODE' | 'DETOKENIZE' | 'VQ_DECODE' | 'DONE';
export type ImageOrigin = 'UPLOAD' | 'GENERATED' | 'EDITED';

export interface ImageRef {
  id: string;
  url: string;
  width: number;
  height: number;
  scale: number;
  grid: number;
  origin: ImageOrigin;
}

export interface Job {
  id: string;
  status: TurnStatus;
  task: Task;
  stage: JobStage;
  done: number;
  total: number;
  error: UserError | null;
  turn?: { id: string; conversation: { id: string } } | null;
}

export interface Turn {
  id: string;
  task: Task;
  prompt: string;
  text: string | null;
  status: TurnStatus;
  createdAt: string;
  error: UserError | null;
  settings: { seed: number; scale: number | null; promptGuidance: number | null; selfCheck: boolean | null };
  inputImage: ImageRef | null;
  image: ImageRef | null;
  parent: { id: string } | null;
  job: Job | null;
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export interface Session {
  me: { id: string; name: string };
  model: {
    name: string;
    version: string;
    defaultScale: number;
    editScale: number;
    selfCheck: boolean;
    imageSize: number;
    experimental: Task[];
    scales: { scale: number; grid: number; tokens: number }[];
    defaults: { image: { promptGuidance: number } };
  };
  limits: { maxUploadBytes: number; maxUploadPixels: number; maxPromptChars: number; maxPageSize: number };
}

// ------------------------------------------------------------------------------------------------ operations

export const IMAGE_FIELDS = 'id url width height scale grid origin';
export const JOB_FIELDS = 'id status task stage done total error { code message }';
export const TURN_FIELDS = `id task prompt text status createdAt error { code message }
  settings { seed scale promptGuidance selfCheck } inputImage { ${IMAGE_FIELDS} } image { ${IMAGE_FIELDS} } parent { id } job { ${JOB_FIELDS} }`;

export const SESSION = `query Session {
  me { id name }
  model { name version defaultScale editScale selfCheck imageSize experimental scales { scale grid tokens } defaults { image { promptGuidance } } }
  limits { maxUploadBytes maxUploadPixels maxPromptChars maxPageSize }
}`;

export const CONVERSATIONS = `query Conversations($first: Int, $after: String) {
  conversations(first: $first, after: $after) {
    edges { cursor node { id title createdAt updatedAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const CONVERSATION = `query Conversation($id: ID!) {
  conversation(id: $id) { id title createdAt updatedAt turns { ${TURN_FIELDS} } }
}`;

export const IMAGES = `query Images($first: Int, $after: String, $origin: ImageOrigin) {
  images(first: $first, after: $after, origin: $origin) {
    edges { cursor node { ${IMAGE_FIELDS} createdAt turn { id prompt } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const SEARCH = `query Search($query: String!, $first: Int, $after: String) {
  search(query: $query, first: $first, after: $after) {
    edges { cursor node { id task prompt text status createdAt conversation { id title } image { ${IMAGE_FIELDS} } inputImage { ${IMAGE_FIELDS} } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const IMAGE = `query Image($id: ID!) {
  image(id: $id) {
    id url width height scale grid tokens codebookSize origin model contentHash createdAt
    parent { ${IMAGE_FIELDS} }
    children { ${IMAGE_FIELDS} }
    turn {
      id task prompt status createdAt model conversation { id title }
      inputImage { ${IMAGE_FIELDS} }
      settings { seed scale temperature topK topP repetitionPenalty maxNewTokens cfgScale }
      timings { queued encode prefill decode decodeTokens detokenize vqDecode total }
    }
  }
}`;

const PAYLOAD = `turn { ${TURN_FIELDS} conversation { id title } } job { ${JOB_FIELDS} } errors { code message field }`;
export const UNDERSTAND = `mutation Understand($input: UnderstandInput!) { understand(input: $input) { ${PAYLOAD} } }`;
export const GENERATE = `mutation Generate($input: GenerateInput!) { generate(input: $input) { ${PAYLOAD} } }`;
export const EDIT = `mutation Edit($input: EditInput!) { edit(input: $input) { ${PAYLOAD} } }`;
export const REROLL = `mutation Reroll($input: RerollInput!) { reroll(input: $input) { ${PAYLOAD} } }`;
export const CANCEL = `mutation Cancel($id: ID!) { cancelJob(id: $id) { job { ${JOB_FIELDS} } errors { code message } } }`;
export const JOB_PROGRESS = `subscription JobProgress($id: ID!) { jobProgress(id: $id) { ${JOB_FIELDS} } }`;

export interface TurnPayload {
  turn: (Turn & { conversation: { id: string; title: string } }) | null;
  job: Job | null;
  errors: UserError[];
}

export const RENAME = `mutation Rename($input: RenameConversationInput!) {
  renameConversation(input: $input) { conversation { id title } errors { code message } }
}`;
export const DELETE_CONVERSATION = `mutation Delete($id: ID!) { deleteConversation(id: $id) { deletedId errors { code message } } }`;
