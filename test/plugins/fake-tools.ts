/** Stand-ins for host tools this machine lacks (no NVIDIA GPU here), and PATH dirs with chosen tools. */
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const emptyPath = () => mkdtempSync(join(tmpdir(), 'rocmflow-path-'));

/** A directory with an nvidia-smi that prints `csv` for the GPU query and a version line otherwise. */
export function fakeNvidiaSmi(csv: string, dir = emptyPath()): string {
  writeFileSync(join(dir, 'nvidia-smi'), `#!/bin/sh\ncase "$1" in --query-gpu=*) printf '%s' '${csv}';; *) echo "NVIDIA-SMI version  : 550.54"; esac\n`);
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  return dir;
}

/** A PATH directory holding links to the real `tools` only. */
export function pathWith(tools: string[]): string {
  const dir = emptyPath();
  for (const t of tools) symlinkSync(execFileSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).trim(), join(dir, t));
  return dir;
}
