// The TypeScript vocabulary must be the Python one (tests/fixtures/shapes/vocab.json, written by
// `training/py -m shapes.fixtures` from training/shapes/vocab.py and language.POSITION_VARIANTS).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vocabJson } from '../../src/shapes/vocab.ts';
import { readJson } from './fixtures.ts';

test('TypeScript vocabulary equals the Python vocabulary', () => {
  assert.deepEqual(vocabJson(), readJson('vocab.json'));
});
