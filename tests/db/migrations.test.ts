import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { MIGRATIONS_FOLDER } from '../../src/db/index.ts';

test('the committed migrations match the schema (drizzle-kit generate finds nothing new)', () => {
  const folder = mkdtempSync(join(tmpdir(), 'dialect-migrations-'));
  try {
    cpSync(MIGRATIONS_FOLDER, folder, { recursive: true });
    const before = readdirSync(folder).sort();
    // drizzle-kit reads drizzle.config.ts's settings from flags here, to write into the copy.
    const run = spawnSync(
      process.execPath,
      [
        'node_modules/drizzle-kit/bin.cjs',
        'generate',
        '--dialect',
        'postgresql',
        '--schema',
        './src/db/schema/*.ts',
        '--out',
        relative(process.cwd(), folder),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(readdirSync(folder).sort(), before, `schema changes without a migration: run npm run db:generate\n${run.stdout}`);
    assert.match(run.stdout, /No schema changes/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
