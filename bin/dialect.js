#!/usr/bin/env node
// The `dialect` command. The sources are TypeScript run through tsx, so that a fresh clone works without a build.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
