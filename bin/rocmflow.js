#!/usr/bin/env node
// The rocmflow CLI. In a checkout it runs the TypeScript sources through a
// compiled mirror that is rebuilt automatically when a source changes (see
// build-cache.js; ROCMFLOW_NO_BUILD_CACHE=1 runs the sources through tsx
// instead). In an installed package (no src/) it runs the compiled dist/.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const checkout = existsSync(new URL('../src/cli/main.ts', import.meta.url));
let mainModule;
if (!checkout) mainModule = new URL('../dist/src/cli/main.js', import.meta.url).href;
else {
  const { compiledRoot } = await import('./build-cache.js');
  const root = await compiledRoot();
  if (root) mainModule = pathToFileURL(join(root, 'src/cli/main.js')).href;
  else {
    const { register } = await import('tsx/esm/api');
    const { register: registerCjs } = await import('tsx/cjs/api');
    registerCjs();
    register();
    mainModule = new URL('../src/cli/main.ts', import.meta.url).href;
  }
}
const { main } = await import(mainModule);
process.exitCode = await main(process.argv.slice(2));
