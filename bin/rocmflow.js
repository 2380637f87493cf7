#!/usr/bin/env node
// The rocmflow CLI. Runs the TypeScript sources through a compiled mirror
// that is rebuilt automatically when a source changes (see build-cache.js);
// set ROCMFLOW_NO_BUILD_CACHE=1 to run the sources through tsx instead.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { compiledRoot } from './build-cache.js';

const root = await compiledRoot();
let mainModule;
if (root) mainModule = pathToFileURL(join(root, 'src/cli/main.js')).href;
else {
  const { register } = await import('tsx/esm/api');
  const { register: registerCjs } = await import('tsx/cjs/api');
  registerCjs();
  register();
  mainModule = new URL('../src/cli/main.ts', import.meta.url).href;
}
const { main } = await import(mainModule);
process.exitCode = await main(process.argv.slice(2));
