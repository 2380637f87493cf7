/**
 * Tool versions for fingerprints (`cmake --version`). The output is cached
 * per resolved binary and its stat, so a no-op run spawns nothing.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import type { CacheIndex } from '../cache/cache-index.js';
import { which } from '../util/which.js';

export { which };

function run(argv: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`.trim();
      resolve(err && !out ? `error: ${err.message.split('\n')[0]}` : out);
    });
  });
}

/** The version output of each tool command; a missing tool is "missing". */
export async function toolVersions(tools: readonly string[], index: CacheIndex): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    tools.map(async (tool) => {
      const argv = tool.split(/\s+/).filter(Boolean);
      const bin = which(argv[0]!);
      if (!bin) {
        out[tool] = 'missing';
        return;
      }
      const st = statSync(bin, { bigint: true });
      const stamp = `${bin}:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
      const cached = await index.get<{ stamp: string; output: string }>('tool', tool);
      if (cached?.stamp === stamp) {
        out[tool] = cached.output;
        return;
      }
      const output = await run([bin, ...argv.slice(1)]);
      await index.set('tool', tool, { stamp, output });
      out[tool] = output;
    }),
  );
  return out;
}
