/**
 * What ROCm version a fetched tree holds. Sources, in order:
 * TheRock's build metadata (`share/therock/therock_manifest.json`,
 * `share/therock/dist_info.json`), the classic `/opt/rocm/.info/version`,
 * and for trees unpacked from .deb packages the record `fetchApt` writes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { APT_RECORD, type AptRecord } from './apt-record.js';

/** A ROCm version and, when known, the build that produced it. */
export interface RocmVersion {
  /** e.g. `7.13.0`, `6.4.3`. */
  version: string;
  /** A TheRock commit, a CI run id, `7.1.1-38`, or `pkg=debversion`. */
  buildId?: string;
  /** The file the answer came from, relative to the prefix. */
  source: string;
}

type Obj = Record<string, unknown>;

/** Depth-first search for the first string/number under one of `keys` (case-insensitive), skipping arrays (submodule lists). */
function findKey(v: unknown, keys: readonly string[], depth = 0): string | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v) || depth > 4) return undefined;
  const entries = Object.entries(v as Obj);
  for (const k of keys) {
    const hit = entries.find(([ek, ev]) => ek.toLowerCase() === k && (typeof ev === 'string' || typeof ev === 'number') && String(ev));
    if (hit) return String(hit[1]);
  }
  for (const [, ev] of entries) {
    const r = findKey(ev, keys, depth + 1);
    if (r) return r;
  }
  return undefined;
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

const VERSION_KEYS = ['rocm_version', 'rocm-version', 'rocmversion', 'version', 'package_version'];
const BUILD_KEYS = ['build_id', 'the_rock_commit', 'commit', 'run_id', 'describe'];

/** The ROCm version of the tree at `prefix`, or null when nothing says. */
export async function rocmVersion(prefix: string): Promise<RocmVersion | null> {
  // dist_info tends to carry the version, the manifest the commit: combine them
  const files = ['share/therock/dist_info.json', 'share/therock/therock_manifest.json'];
  const docs = await Promise.all(files.map((rel) => readJson(join(prefix, rel))));
  const vi = docs.findIndex((d) => findKey(d, VERSION_KEYS));
  const buildId = docs.map((d) => findKey(d, BUILD_KEYS)).find(Boolean);
  if (vi >= 0) return { version: findKey(docs[vi], VERSION_KEYS)!, buildId, source: files[vi]! };
  try {
    const raw = (await readFile(join(prefix, '.info/version'), 'utf8')).trim().split('\n')[0]!.trim();
    // "7.1.1-38": the part after the dash is the build number
    const m = /^(\d+(?:\.\d+)*)(?:-(.+))?$/.exec(raw);
    if (m) return { version: m[1]!, buildId: raw, source: '.info/version' };
    if (raw) return { version: raw, source: '.info/version' };
  } catch {}
  const apt = (await readJson(join(prefix, APT_RECORD))) as AptRecord | undefined;
  if (apt && Array.isArray(apt.packages) && apt.packages.length > 0) {
    // the HIP or HSA runtime's version is "the ROCm version" of a Debian install
    const pkg = ['libamdhip64', 'libhsa-runtime64', 'hip', 'rocm', 'libhsa', 'librocblas']
      .map((p) => apt.packages.find((x) => x.name.startsWith(p)))
      .find(Boolean) ?? apt.packages[0]!;
    const upstream = pkg.version.replace(/^\d+:/, '').replace(/-[^-]*$/, '').replace(/[+~].*$/, '');
    return { version: upstream, buildId: `${pkg.name}=${pkg.version}`, source: APT_RECORD };
  }
  return null;
}
