#!/usr/bin/env node
// Loads the TypeScript sources (and the user's rocmflow.config.ts, tasks and
// plugins, whether their package is ESM or CommonJS) through tsx's
// in-process loaders: no separate build step.
import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';

registerCjs();
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
