#!/usr/bin/env node
// Runs every tests/**/*.test.ts with node's own test runner (TypeScript through tsx), so that the closing
// summary is node:test's. Arguments narrow the run: `npm test -- tests/model` or a file path.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function collect(path) {
  if (statSync(path).isFile()) return path.endsWith('.test.ts') ? [path] : [];
  return readdirSync(path, { withFileTypes: true })
    .filter((entry) => entry.name !== 'fixtures' && entry.name !== 'node_modules')
    .flatMap((entry) => collect(join(path, entry.name)));
}

const roots = process.argv.slice(2);
const files = (roots.length > 0 ? roots : ['tests']).flatMap(collect).sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
