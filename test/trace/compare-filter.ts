/**
 * Compare the seed project's strace filter with rocmflow's parser + closure
 * on the same real traces; prints a Markdown table (docs/strace-filter-comparison.md).
 *
 *   node bin/run-ts.js test/trace/compare-filter.ts        (or: npx tsx ...)
 *
 * The seed filter: keep lines whose syscall matches
 * openat|open|stat|lstat|access|readlink, take the first quoted string as the
 * path, ignore the return code. "Needed" is what rocmflow's closure says the
 * workload needs (traced files, symlinks on their paths, ELF interpreters,
 * DT_NEEDED libraries, #! interpreters): files and symlinks, not directories.
 * llama.cpp runs only when the shared CPU build already exists (.work/llama-cpu-build).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeClosure, type ClosureEntry } from '../../src/runtime/closure.js';
import { CallJoiner } from '../../src/trace/call-joiner.js';
import { parseTrace } from '../../src/trace/parse.js';
import { absolutize } from '../../src/trace/paths.js';
import { runTraced } from '../../src/trace/run.js';
import { parseAnnotated, parseQuoted } from '../../src/trace/strace-string.js';
import { syscallRule } from '../../src/trace/syscalls.js';

const SEED_LINE = /(openat|open|stat|lstat|access|readlink)\(/;
const SEED_CALLS = new Set(['openat', 'open', 'stat', 'lstat', 'access', 'readlink']);

interface Workload {
  name: string;
  command: string[];
  cwd: string;
  env?: Record<string, string>;
}

/** The seed filter, as it was: first quoted string of matching lines, return code ignored. */
function seedFilter(log: string): string[] {
  const out = new Set<string>();
  for (const line of log.split('\n')) {
    if (!SEED_LINE.test(line)) continue;
    const m = /"((?:[^"\\]|\\.)*)"/.exec(line.slice(line.search(SEED_LINE)));
    if (m && m[1] !== '') out.add(m[1]!);
  }
  return [...out];
}

/** For every absolute path, the syscalls that reached it successfully, and whether through a dirfd. */
function successfulCalls(log: string): Map<string, Set<string>> {
  const by = new Map<string, Set<string>>();
  const joiner = new CallJoiner('log');
  for (const line of log.split('\n')) {
    for (const ev of joiner.push(line)) {
      if (ev.type !== 'call') continue;
      const { name, args, ret } = ev.call;
      const rule = syscallRule(name);
      if (!rule || ret.value === undefined || ret.value < 0) continue;
      for (const pa of rule.paths) {
        const q = parseQuoted(args[pa.path] ?? '');
        if (!q || q.value === '') continue;
        const dir = pa.dirfd === undefined ? undefined : parseAnnotated(args[pa.dirfd] ?? '');
        if (!q.value.startsWith('/') && !dir?.isPath) continue; // relative to a cwd the line does not show
        const tag = q.value.startsWith('/') ? name : dir!.head === 'AT_FDCWD' ? `${name}(relative)` : `${name}(dirfd)`;
        const base = dir?.isPath ? dir.annotation! : '/';
        for (const p of new Set([absolutize(base, q.value), ...(ret.path ? [ret.path] : [])])) {
          if (!by.has(p)) by.set(p, new Set());
          by.get(p)!.add(tag);
        }
      }
    }
  }
  return by;
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

const real = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
};

async function measure(w: Workload, work: string) {
  const logPath = join(work, `${w.name.replace(/\W+/g, '-')}.log`);
  const run = await runTraced({ command: w.command, cwd: w.cwd, env: w.env, logPath, capture: true });
  if (run.exitCode !== 0) throw new Error(`${w.name} failed (${run.exitCode}): ${run.stderr}`);
  const log = readFileSync(logPath, 'utf8');
  const parsed = parseTrace(log, { file: logPath });
  const closure = await computeClosure({ layout: { base: '/', layers: [] }, access: parsed.access });
  const seed = seedFilter(log);
  const seedAbs = seed.filter((p) => p.startsWith('/')).map((p) => absolutize('/', p));
  const seedSet = new Set(seedAbs);
  // with cp -L a listed name brings the content of its real file and creates its parent dirs
  const seedReal = new Set(seedAbs.filter(exists).map((p) => real(p)).filter((p): p is string => p !== undefined));
  const seedPrefixes = new Set(seedAbs.flatMap((p) => p.split('/').slice(1, -1).map((_, i, a) => '/' + a.slice(0, i + 1).join('/'))));

  const needed = closure.entries.filter((e) => e.type !== 'dir');
  const missedExact = needed.filter((e) => !seedSet.has(e.path));
  // a link to a directory is covered by a listed path through it; a link to a file when its real file is shipped
  const covered = (e: ClosureEntry) => e.type === 'file' ? seedReal.has(e.path) : seedPrefixes.has(e.path) || seedReal.has(real(e.path) ?? '');
  const missedDeref = missedExact.filter((e) => !covered(e));
  const calls = successfulCalls(log);
  const why = (e: ClosureEntry): string => {
    if (e.reason !== 'traced') return e.reason === 'needed' ? 'DT_NEEDED' : e.reason === 'shebang' ? '#! interpreter' : e.reason;
    if (parsed.access.executables.includes(e.path)) return 'execve';
    const seen = [...(calls.get(e.path) ?? [])];
    if (seen.some((c) => c.endsWith('(dirfd)'))) return 'dirfd-relative open';
    if (seen.some((c) => c.endsWith('(relative)'))) return 'relative path';
    if (seen.length > 0 && seen.every((c) => !SEED_CALLS.has(c))) return `${[...new Set(seen)].sort().join('/')} only`;
    if (seedAbs.some((p) => real(p) === e.path)) return 'real file of a listed link';
    // traced, never named by the program: reached through a link it did name
    return seen.length === 0 ? 'real file behind a link' : 'other';
  };
  const tally = (list: ClosureEntry[]) => {
    const t = new Map<string, number>();
    for (const e of list) t.set(why(e), (t.get(why(e)) ?? 0) + 1);
    return [...t].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  };
  const missingSeed = seedAbs.filter((p) => !exists(p));
  return {
    name: w.name,
    seedPaths: seed.length,
    seedMissing: missingSeed.length,
    seedRelative: seed.length - seedAbs.length,
    missing: parsed.access.missing.length,
    needed: needed.length,
    missedExact: missedExact.length,
    missedDeref: missedDeref.length,
    derefKinds: tally(missedDeref),
    exactKinds: tally(missedExact),
    // one example per kind, temp dirs shortened
    examples: [...new Map(missedDeref.map((e) => [why(e), e.path.replace(work, '$TMP')])).entries()].map(([k, p]) => `${p} (${k})`),
  };
}

async function main(): Promise<void> {
  const work = realpathSync(mkdtempSync(join(tmpdir(), 'rocmflow-compare-')));
  try {
    const shDir = join(work, 'shell');
    mkdirSync(join(shDir, 'sub'), { recursive: true });
    writeFileSync(join(shDir, 'sub/data.txt'), 'data\n');
    writeFileSync(join(shDir, 'sub/run.sh'), '#!/bin/sh\nls -l . >/dev/null\ncat data.txt\n');
    chmodSync(join(shDir, 'sub/run.sh'), 0o755);
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
    const workloads: Workload[] = [
      { name: 'python3 (json, email)', command: ['/usr/bin/python3', '-c', 'import json, email.parser; print(json.dumps({"a": 1}))'], cwd: work, env },
      { name: 'perl (POSIX, Data::Dumper)', command: ['/usr/bin/perl', '-MPOSIX', '-MData::Dumper', '-e', 'print Dumper([floor(2.5)])'], cwd: work, env },
      { name: 'sh: cd + relative #! exec', command: ['/bin/sh', '-c', 'cd sub && ./run.sh'], cwd: shDir, env },
    ];
    const build = join(import.meta.dirname, '../../.work/llama-cpu-build');
    const bin = join(build, 'bin');
    if (existsSync(join(build, '.complete')) && existsSync(join(bin, 'llama-completion'))) {
      const { writeTinyModel } = await import('../../src/gguf/tiny-model.js');
      const vocab = join(import.meta.dirname, '../../.work/llama.cpp/models/ggml-vocab-llama-spm.gguf');
      const model = await writeTinyModel({ vocab, out: join(work, 'tiny.gguf'), seed: 1 });
      workloads.push({
        name: 'llama-completion (tiny GGUF, CPU)', cwd: work, env: { ...env, LD_LIBRARY_PATH: bin },
        command: [join(bin, 'llama-completion'), '-m', model.path, '-p', 'Hello', '-n', '8', '--seed', '1', '--temp', '0', '-no-cnv', '-c', '128', '-t', '1', '--no-warmup'],
      });
    } else console.error('llama.cpp CPU build not found under .work/: llama row skipped');

    const rows = [];
    for (const w of workloads) rows.push(await measure(w, work));
    console.log('| workload | seed filter: paths | of which do not exist | relative (unusable) | rocmflow: missing lookups | needed (closure files+links) | needed, not listed by seed | still missing with `cp -L` | why (still missing) |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.seedPaths} | ${r.seedMissing} | ${r.seedRelative} | ${r.missing} | ${r.needed} | ${r.missedExact} | ${r.missedDeref} | ${r.derefKinds} |`);
    }
    console.log('');
    for (const r of rows) console.log(`- ${r.name}: not listed by the seed filter: ${r.exactKinds}. Still missing with cp -L, e.g.: ${r.examples.join(', ')}`);
    console.log(`\nstrace ${execFileSync('strace', ['-V'], { encoding: 'utf8' }).split('\n')[0]}; ${new Date().toISOString().slice(0, 10)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
