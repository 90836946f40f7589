/**
 * Shared by the web tests: the page built with Vite, a real server on a random port (PGlite clone, the shipped
 * model when it is present, else the tiny bundle) serving it, and headless Chromium (Debian's, through
 * playwright-core: never a browser download) with the page's console watched for errors.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { TarModel } from '../../src/model/index.ts';
import { type DialectServer, startServer } from '../../src/server/app.ts';
import { loadConfig } from '../../src/server/config.ts';
import { createLogger } from '../../src/server/logging.ts';
import { JUDGE_MODULE } from '../../src/shapes/judge.ts';
import { openTestDatabase, type TestDatabase } from '../db/harness.ts';
import { LogSink } from '../server/helpers.ts';
import { TINY_BUNDLE } from '../model/helpers.ts';
// @ts-expect-error: a plain ES module without types
import { buildWeb, WEB_DIST } from '../../scripts/build-web.mjs';

export const CHROMIUM = process.env.DIALECT_CHROMIUM ?? '/usr/bin/chromium';
/**
 * Where screenshots go: docs/screenshots (committed, shown by the README) when DIALECT_WEB_SCREENSHOTS=1
 * (`npm run screenshots:web`), else a temporary folder, so that a plain test run leaves the tree clean.
 */
export const SCREENSHOTS =
  process.env.DIALECT_WEB_SCREENSHOTS === '1'
    ? fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))
    : join(tmpdir(), 'dialect-web-screenshots');
const SHIPPED = fileURLToPath(new URL('../../models/tar-shapes/', import.meta.url));

/** The shipped model when it is there (DIALECT_WEB_TEST_MODEL=tiny forces the tiny bundle). */
export function testBundle(): string {
  if (process.env.DIALECT_WEB_TEST_MODEL === 'tiny') return TINY_BUNDLE;
  if (process.env.DIALECT_WEB_TEST_MODEL !== undefined) return process.env.DIALECT_WEB_TEST_MODEL;
  return existsSync(join(SHIPPED, 'manifest.json')) ? SHIPPED : TINY_BUNDLE;
}

/** A model whose jobs can be held (queued in the runner, "running" to the page) until released or cancelled. */
export interface HeldModel {
  model: TarModel;
  hold(): void;
  release(): void;
}

function holdable(model: TarModel): HeldModel {
  let gate: { promise: Promise<void>; open: () => void } | null = null;
  const held = (name: 'generate' | 'edit' | 'understand') => async (request: { signal?: AbortSignal; scale?: number; onProgress?: (e: unknown) => void }) => {
    if (gate !== null) {
      // Held a third of the way through decoding, as far as the page can tell.
      const scales = (model.manifest as unknown as { scales: { scale: number; tokens: number }[] }).scales;
      const total = scales.find((s) => s.scale === request.scale)?.tokens ?? 81;
      request.onProgress?.({ stage: 'decode', done: Math.floor(total / 3), total });
      const signal = request.signal;
      await Promise.race([
        gate.promise,
        new Promise<void>((resolve) => {
          if (signal === undefined) return;
          if (signal.aborted) resolve();
          signal.addEventListener('abort', () => resolve(), { once: true });
        }),
      ]);
    }
    // A cancelled request goes on to the model, which answers its aborted signal as it always does.
    return (model[name] as (r: unknown) => Promise<unknown>).call(model, request);
  };
  const overrides: Record<string, unknown> = { generate: held('generate'), edit: held('edit'), understand: held('understand') };
  const proxy = new Proxy(model, {
    get(target, property, _receiver) {
      if (typeof property === 'string' && property in overrides) return overrides[property];
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    model: proxy,
    hold() {
      if (gate !== null) return;
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    release() {
      gate?.open();
      gate = null;
    },
  };
}

/** Whether the tests run the shipped model (whose answers mean something) rather than random weights. */
export function usingShippedModel(): boolean {
  return testBundle() !== TINY_BUNDLE;
}

let loaded: Promise<TarModel> | undefined;
function sharedModel(): Promise<TarModel> {
  loaded ??= TarModel.load({ bundleDir: testBundle(), maxBatch: 8, intraOpThreads: 1, judgeModule: JUDGE_MODULE });
  return loaded;
}

export interface WebServer {
  server: DialectServer;
  url: string;
  held: HeldModel;
  logs: LogSink;
  stop(): Promise<void>;
}

/** Builds the page when stale and starts a server serving it on a random loopback port. */
export async function startWebServer(env: Record<string, string> = {}): Promise<WebServer> {
  await buildWeb({ quiet: true });
  const handle: TestDatabase = await openTestDatabase('pglite');
  const held = holdable(await sharedModel());
  const config = loadConfig({
    PORT: '0',
    DIALECT_MODEL: testBundle(),
    DIALECT_WEB_DIR: WEB_DIST,
    DIALECT_RATE_PER_MINUTE: '6000',
    DIALECT_RATE_BURST: '1000',
    DIALECT_MAX_JOBS_PER_USER: '50',
    LOG_LEVEL: 'warn',
    ...env,
  });
  const logs = new LogSink();
  const server = await startServer(config, { database: handle.database, model: held.model, logger: createLogger(config.logLevel, logs) });
  return {
    server,
    url: server.url,
    held,
    logs,
    async stop() {
      held.release();
      await server.stop();
      await handle.dispose();
    },
  };
}

/**
 * The web server and the browser, started together. If either fails (no Chromium on the machine, a port in use), the
 * other is closed before the error is thrown, so that a failed `before` hook does not leave a server keeping the test
 * file's process alive.
 */
export async function startWebAndBrowser(): Promise<[WebServer, Browser]> {
  const [web, browser] = await Promise.allSettled([startWebServer(), launchBrowser()]);
  if (web.status === 'fulfilled' && browser.status === 'fulfilled') return [web.value, browser.value];
  if (web.status === 'fulfilled') await web.value.stop();
  if (browser.status === 'fulfilled') await browser.value.close();
  throw web.status === 'rejected' ? web.reason : (browser as PromiseRejectedResult).reason;
}

export async function launchBrowser(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  // playwright-core gives every launch a fresh temporary profile (its own --user-data-dir).
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions so far. */
  errors: string[];
  close(): Promise<void>;
}

/** A fresh context (its own localStorage) and page, with console errors collected. */
export async function openPage(browser: Browser, url: string, options: { width?: number; height?: number } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: options.width ?? 1100, height: options.height ?? 760 }, baseURL: url });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page: ${error.message}`));
  return { context, page, errors, close: () => context.close() };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Palette PNGs: a third of the size, so that the committed screenshots stay small.
  const shot = await page.screenshot({ fullPage: false });
  await sharp(shot).png({ palette: true, quality: 90, effort: 8, compressionLevel: 9 }).toFile(join(SCREENSHOTS, `${name}.png`));
}

/** A PNG on disk-free form for `setInputFiles`: a shape on a plain background. */
export async function shapePng(color = { r: 220, g: 40, b: 40 }): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="#f2f2f2"/><circle cx="32" cy="32" r="18" fill="rgb(${color.r},${color.g},${color.b})"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export async function gql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<T> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data as T;
}
