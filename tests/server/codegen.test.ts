/** The committed TypeScript types of the API must be what `npm run codegen` makes from schema.graphql today. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { generate } from '@graphql-codegen/cli';
import config from '../../codegen.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('src/server/graphql/generated.ts is up to date with schema.graphql (run npm run codegen)', async () => {
  const outputs = (await generate({ ...config, cwd: ROOT, silent: true }, false)) as { filename: string; content: string }[];
  assert.equal(outputs.length, 1);
  const committed = readFileSync(new URL('../../src/server/graphql/generated.ts', import.meta.url), 'utf8');
  assert.ok(committed === outputs[0]!.content, 'generated.ts is stale: run `npm run codegen` and commit the result');
});
