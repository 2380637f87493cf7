/**
 * `rocmflow fatbin list FILE... [--json]` and `rocmflow fatbin prune FILE
 * --keep ARCH[,ARCH...] --out FILE [--json]`: the GPU arches a library
 * carries code for, and a copy of it with only some of them.
 */
import { basename, resolve } from 'node:path';
import { usageError } from '../../errors.js';
import { archesOf, type FatbinListing } from '../../fatbin/arches-of.js';
import { pruneFile, type PruneResult } from '../../fatbin/prune-file.js';
import type { FatbinContainer } from '../../fatbin/types.js';
import { humanBytes } from '../../image/report.js';
import { parseArgs, type FlagSpec } from '../args.js';
import type { Command, CommandIO } from '../command.js';

const USAGE = `Usage:
  rocmflow fatbin list FILE... [--json] [--containers]
      The GPU arches each file (library, executable, object) carries device
      code for, with their bytes: HIP (.hip_fatbin: clang offload bundles,
      plain or compressed) and CUDA (.nv_fatbin, and fatbins in other
      sections such as cuBLASLt's .cask_resource). Reads only headers.
      --json prints one object per file:
        {"file","format":"hip"|"cuda"|null,"arches":{"<arch>":bytes},"fileBytes"}
      --containers adds each bundle/fatbin with its offset, size and entries.
  rocmflow fatbin prune FILE --keep ARCH[,ARCH...] --out FILE [--json]
      Write a copy of FILE with only the code of the kept arches (host
      entries always stay). Kept code objects stay byte-identical and every
      offset the loader reads stays valid; dropped bytes become holes, so the
      copy takes less disk while its size is unchanged. ARCH: gfx1100 (with
      every feature variant), gfx11-generic, sm_90, sm_90a, compute_90.`;

const FLAGS: Record<string, FlagSpec> = {
  json: { type: 'boolean' },
  containers: { type: 'boolean' },
  keep: { type: 'string', multiple: true },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const CONTAINER_NAMES: Record<FatbinContainer['kind'], string> = { bundle: 'bundle', 'compressed-bundle': 'compressed bundle', 'nv-fatbin': 'fatbin', 'zstd-cubin': 'zstd cubin' };

function plural(n: number, word: string): string {
  if (n === 1) return `${n} ${word}`;
  return `${n} ${word.endsWith('y') ? word.slice(0, -1) + 'ies' : word + 's'}`;
}

/** "66 bundles in .hip_fatbin, 2 fatbins in .cask_resource" */
function describeContainers(cs: readonly FatbinContainer[]): string {
  const groups = new Map<string, number>();
  for (const c of cs) {
    const k = `${CONTAINER_NAMES[c.kind]}\0${c.section}`;
    groups.set(k, (groups.get(k) ?? 0) + 1);
  }
  return [...groups].map(([k, n]) => {
    const [kind, section] = k.split('\0');
    return `${plural(n, kind!)} in ${section}`;
  }).join(', ');
}

function printListing(l: FatbinListing, io: CommandIO): void {
  if (!l.format) {
    io.out(`${l.file}: no device code`);
    return;
  }
  const inFile = l.containers.reduce((n, c) => n + c.size, 0);
  io.out(`${l.file}: ${l.format}, ${describeContainers(l.containers)} (${humanBytes(inFile)} of ${humanBytes(l.fileBytes)})`);
  const w = Math.max(...Object.keys(l.arches).map((a) => a.length), 4);
  const ptx = new Set(l.containers.flatMap((c) => c.entries.filter((e) => e.kind === 'ptx').map((e) => e.arch)));
  for (const [arch, bytes] of Object.entries(l.arches))
    io.out(`  ${arch.padEnd(w)}  ${humanBytes(bytes).padStart(10)}  ${bytes.toLocaleString('en-US')} bytes${ptx.has(arch) ? '  (PTX)' : ''}`);
  const compressed = l.containers.filter((c) => c.kind === 'compressed-bundle');
  if (compressed.length) {
    const stored = compressed.reduce((n, c) => n + c.size, 0);
    const raw = compressed.reduce((n, c) => n + c.compressed!.uncompressedSize, 0);
    io.out(`  ${plural(compressed.length, 'compressed bundle')}: ${humanBytes(stored)} in the file, ${humanBytes(raw)} decompressed (their arches count decompressed bytes)`);
  }
  const nvCompressed = l.containers.flatMap((c) => c.entries.filter((e) => e.compression));
  if (nvCompressed.length) {
    const raw = nvCompressed.reduce((n, e) => n + (e.uncompressedSize ?? 0), 0);
    io.out(`  ${plural(nvCompressed.length, 'entry')} compressed by the fatbin itself: ${humanBytes(nvCompressed.reduce((n, e) => n + e.size, 0))} stored, ${humanBytes(raw)} decompressed`);
  }
}

function listingJson(l: FatbinListing, containers: boolean): object {
  const base = { file: l.file, format: l.format, arches: l.arches, fileBytes: l.fileBytes };
  return containers ? { ...base, containers: l.containers } : base;
}

function printPrune(r: PruneResult, io: CommandIO): void {
  const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  const kept = Object.keys(r.kept);
  io.out(`${r.file} -> ${r.dest}`);
  io.out(`  kept ${kept.length ? kept.join(', ') : 'no device code'} (${humanBytes(sum(r.kept))}); dropped ${Object.keys(r.dropped).join(', ') || 'nothing'} (${humanBytes(sum(r.dropped))}): ${plural(r.pruned.length, 'entry')} from ${r.containers} containers`);
  io.out(`  size ${humanBytes(r.sizes.apparent)} apparent; on disk ${humanBytes(r.sizes.allocated)} (source ${humanBytes(r.sizes.sourceAllocated)})`);
  for (const w of r.leftWhole) io.err(`rocmflow: warning: ${basename(r.file)}: ${w.section} at 0x${w.offset.toString(16)}: ${w.reason}`);
  if (kept.length === 0) io.err(`rocmflow: warning: ${basename(r.file)} has no code for ${r.keep.join(', ')}: the copy has no device code left`);
  else if (r.emptied) io.err(`rocmflow: warning: ${basename(r.file)}: ${plural(r.emptied, 'container')} had no code for ${r.keep.join(', ')}`);
}

/** `rocmflow fatbin`: list the GPU arches of fat binaries, and prune them. */
export const fatbinCommand: Command = {
  name: 'fatbin',
  summary: 'list the GPU arches fat binaries carry code for; prune the others',
  usage: USAGE,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
      io.out(USAGE);
      return sub ? 0 : 2;
    }
    const { flags, positionals: pos } = parseArgs(rest, FLAGS, `fatbin ${sub}`);
    if (flags.help) {
      io.out(USAGE);
      return 0;
    }
    if (sub === 'list') {
      if (pos.length === 0) throw usageError('E_USAGE', 'fatbin list: expected one or more FILEs (see rocmflow fatbin --help)');
      for (const f of pos) {
        const l = await archesOf(resolve(io.cwd, f), { signal: io.signal });
        if (flags.json) io.out(JSON.stringify(listingJson(l, !!flags.containers)));
        else printListing(l, io);
      }
      return 0;
    }
    if (sub === 'prune') {
      if (pos.length !== 1) throw usageError('E_USAGE', 'fatbin prune: expected one FILE (see rocmflow fatbin --help)');
      const keep = ((flags.keep as string[] | undefined) ?? []).flatMap((k) => k.split(',')).map((k) => k.trim()).filter(Boolean);
      if (keep.length === 0) throw usageError('E_USAGE', 'fatbin prune: --keep ARCH[,ARCH...] is required (e.g. --keep gfx1100)');
      if (typeof flags.out !== 'string') throw usageError('E_USAGE', 'fatbin prune: --out FILE is required');
      const r = await pruneFile(resolve(io.cwd, pos[0]!), resolve(io.cwd, flags.out), { keep, signal: io.signal });
      if (flags.json) io.out(JSON.stringify(r));
      else printPrune(r, io);
      return 0;
    }
    throw usageError('E_USAGE', `unknown subcommand "fatbin ${sub}" (expected list or prune)`);
  },
};
