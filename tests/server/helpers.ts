/** Shared by the server tests: the tiny model, a server on a test database, GraphQL over HTTP, images. */
import { Writable } from 'node:stream';
import sharp from 'sharp';
import type { Database } from '../../src/db/client.ts';
import { TarModel, type TarModelOptions } from '../../src/model/index.ts';
import { type DialectServer, startServer } from '../../src/server/app.ts';
import { loadConfig } from '../../src/server/config.ts';
import type { Context } from '../../src/server/context.ts';
import { createLogger } from '../../src/server/logging.ts';
import { JUDGE_MODULE } from '../../src/shapes/judge.ts';
import { openTestDatabase, type TestDatabase } from '../db/harness.ts';
import { bundleCopy, TINY_BUNDLE } from '../model/helpers.ts';

export { TINY_BUNDLE };

let model: Promise<TarModel> | undefined;
/** One tiny model per test file (the server shares it; the file's `after` need not dispose it). */
export function tinyModel(): Promise<TarModel> {
  model ??= TarModel.load({ bundleDir: TINY_BUNDLE, maxBatch: 8, intraOpThreads: 1, judgeModule: JUDGE_MODULE });
  return model;
}

/** Log lines of a server, kept for assertions instead of printed. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') this.lines.push(JSON.parse(line));
    done();
  }
}

export async function startTestServer(
  database: Database,
  env: Record<string, string> = {},
): Promise<DialectServer & { logs: LogSink }> {
  const config = loadConfig({ PORT: '0', DIALECT_MODEL: TINY_BUNDLE, LOG_LEVEL: 'info', ...env });
  const logs = new LogSink();
  const server = await startServer(config, { database, model: await tinyModel(), logger: createLogger(config.logLevel, logs) });
  return Object.assign(server, { logs });
}

/**
 * A server on a fresh PGlite database with a model of its own: a copy of the tiny bundle with its manifest changed by
 * `edit`, loaded as the server loads its model (the shapes judge) with `load` on top (other judges, say). `dispose` stops and removes all of it.
 */
export async function startOnBundleCopy(
  edit: (manifest: any) => void,
  load: Partial<TarModelOptions> = {},
): Promise<{ server: DialectServer; model: TarModel; handle: TestDatabase; dispose: () => Promise<void> }> {
  const copy = await bundleCopy(edit);
  const model = await TarModel.load({ bundleDir: copy.dir, maxBatch: 4, intraOpThreads: 1, judgeModule: JUDGE_MODULE, ...load });
  const handle = await openTestDatabase('pglite');
  const config = loadConfig({ PORT: '0', DIALECT_MODEL: copy.dir, LOG_LEVEL: 'info' });
  const server = await startServer(config, { database: handle.database, model, logger: createLogger('info', new LogSink()) });
  const dispose = async () => {
    await server.stop();
    await handle.dispose();
    await model.dispose();
    await copy.cleanup();
  };
  return { server, model, handle, dispose };
}

export interface GqlResponse<T = any> {
  status: number;
  headers: Headers;
  body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
}

export async function gql<T = any>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GqlResponse<T>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { errors: [{ message: text }] };
  }
  return { status: response.status, headers: response.headers, body };
}

/** Runs an operation in process (Apollo's executeOperation) as the given credentials. */
export async function exec<T = any>(
  server: DialectServer,
  query: string,
  variables: Record<string, unknown> = {},
  credentials: { authorization?: string; discordUser?: string; discordName?: string } = {},
): Promise<{ data?: T; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }> {
  const contextValue: Context = await server.contextFor(credentials);
  const response = await server.apollo.executeOperation<T>({ query, variables }, { contextValue });
  if (response.body.kind !== 'single') throw new Error('expected a single result');
  return response.body.singleResult as never;
}

let discordIds = 0;
/** Credentials of a fresh user (a Discord user acting through the loopback owner): isolates tests from each other. */
export function freshUser(): { discordUser: string } {
  discordIds += 1;
  return { discordUser: String(900_000_000_000 + process.pid * 1000 + discordIds) };
}

export async function pngBase64(width = 32, height = 32, color = { r: 200, g: 30, b: 30 }): Promise<string> {
  const png = await sharp({ create: { width, height, channels: 3, background: color } }).png().toBuffer();
  return png.toString('base64');
}

export async function jpegBase64(width = 32, height = 32): Promise<string> {
  return (await sharp({ create: { width, height, channels: 3, background: { r: 0, g: 90, b: 200 } } }).jpeg().toBuffer()).toString('base64');
}

export const TURN_FIELDS = `
  turn { id status task prompt text conversation { id title } parent { id }
         image { id width height scale grid tokens url origin parent { id } }
         inputImage { id scale tokens origin }
         settings { seed scale } error { code message } }
  job { id status stage }
  errors { code message field }`;

export async function until(check: () => Promise<boolean>, timeoutMs = 20_000, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}
