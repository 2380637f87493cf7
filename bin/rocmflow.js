#!/usr/bin/env node
// The rocmflow CLI. In a checkout it runs the TypeScript sources through a
// compiled mirror that is rebuilt automatically when a source changes (see
// build-cache.js; ROCMFLOW_NO_BUILD_CACHE=1 runs the sources through tsx
// instead). In an installed package (no src/) it runs the compiled dist/.
// Before any of that, a `run` is offered to a running `rocmflow server`,
// which answers it when the run has nothing to do (server-client.js).
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';

async function runHere(argv) {
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
  return main(argv);
}

const argv = process.argv.slice(2);
// no server was ever started by this user under this tmp (its directory is missing): nothing to load or ask
const tmp = (process.env.TMPDIR || process.env.TMP || process.env.TEMP || '/tmp').replace(/(.)\/$/, '$1');
const maybeServer = argv[0] === 'run' && existsSync(`${tmp}/rocmflow-server-${process.getuid?.() ?? 0}`);
const served = maybeServer ? await (await import('./server-client.js')).askServer(resolve(import.meta.dirname, '..'), argv) : null;
if (served) {
  // a reader that stops early (`| head`) ends the output quietly, as main.ts has it
  const quiet = (e) => {
    if (e.code !== 'EPIPE') throw e;
  };
  process.stdout.on('error', quiet);
  process.stderr.on('error', quiet);
  for (const [fd, text] of served.output) (fd === 1 ? process.stdout : process.stderr).write(text);
  process.exitCode = served.code;
} else process.exitCode = await runHere(argv);
