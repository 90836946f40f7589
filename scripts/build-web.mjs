#!/usr/bin/env node
// Builds the web page (web/ → web/dist) with Vite when the build is missing or older than its sources
// (web/index.html, web/src/**, web/vite.config.ts, package-lock.json). `npm start` runs it first (prestart);
// `--force` always builds. Exported for the web tests, which build before they start a server.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WEB = join(ROOT, 'web');
export const WEB_DIST = join(WEB, 'dist');

function newest(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

export function webBuildIsStale() {
  const built = statSync(join(WEB_DIST, 'index.html'), { throwIfNoEntry: false });
  if (built === undefined) return true;
  const sources = Math.max(
    newest(join(WEB, 'index.html')),
    newest(join(WEB, 'src')),
    newest(join(WEB, 'vite.config.ts')),
    newest(join(ROOT, 'package-lock.json')),
  );
  return sources > built.mtimeMs;
}

export async function buildWeb({ force = false, quiet = false } = {}) {
  if (!force && !webBuildIsStale()) return false;
  const { build } = await import('vite');
  const started = Date.now();
  await build({ configFile: join(WEB, 'vite.config.ts'), logLevel: quiet ? 'silent' : 'warn' });
  if (!quiet) process.stderr.write(`web: built web/dist in ${Date.now() - started} ms\n`);
  return true;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildWeb({ force: process.argv.includes('--force') }).catch((error) => {
    process.stderr.write(`web: the build failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
