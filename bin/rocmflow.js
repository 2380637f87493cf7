#!/usr/bin/env node
// Loads the TypeScript sources (and the user's rocmflow.config.ts, tasks and
// plugins) through tsx's in-process loader: no separate build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
