// Runs the Python half's self-test (training/shapes/selftest.py): deterministic, valid records; unambiguous,
// correctly answered questions; valid edits; eval seeds refused by the training stream; fast rendering; committed
// fixtures up to date. Skipped where Debian's python3 with numpy and PIL is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const py = join(root, 'training', 'py');
const probe = existsSync('/usr/bin/python3')
  ? spawnSync('/usr/bin/python3', ['-c', 'import numpy, PIL'], { encoding: 'utf8' })
  : null;
const skip = !probe || probe.status !== 0 ? 'python3 with numpy and PIL not available' : false;

test('Python shapes self-test', { skip }, () => {
  const r = spawnSync(py, ['-m', 'shapes.selftest', '2000'], { encoding: 'utf8', cwd: root });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /shapes selftest ok/);
});

test('Python shared edit positions self-test', { skip }, () => {
  const r = spawnSync(py, ['-m', 'dialect_tar.test_positions'], { encoding: 'utf8', cwd: root });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /edit positions selftest ok/);
});
