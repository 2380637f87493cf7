/**
 * `rocmflow snapshot create|restore|info|verify`: deterministic tar.zst
 * snapshots of a directory tree with a manifest next to them.
 */
import { resolve } from 'node:path';
import { RocmflowError, usageError } from '../../errors.js';
import { humanBytes } from '../../image/report.js';
import { manifestPathFor, readManifest, restoreSnapshot, snapshot, snapshotInfo, verifyTree, type SnapshotInfo } from '../../image/snapshot.js';
import { parseArgs, type FlagSpec } from '../args.js';
import type { Command, CommandIO } from '../command.js';

const USAGE = `Usage:
  rocmflow snapshot create DIR OUT.tar.zst [--manifest FILE] [--level N] [--mtime SECONDS] [--version ID] [--json]
      Archive DIR deterministically (sorted entries, owners 0/0, one mtime:
      --mtime, else SOURCE_DATE_EPOCH, else 0) with zstd (level 3 by default)
      and write the manifest (OUT.manifest.json unless --manifest).
  rocmflow snapshot restore SNAPSHOT DIR [--manifest FILE]
      Extract into DIR (new or empty) and verify every file against the manifest.
  rocmflow snapshot info SNAPSHOT [--manifest FILE] [--json]
      Version, totals and the OCI layer digests (digest, diff_id, size).
  rocmflow snapshot verify SNAPSHOT DIR [--manifest FILE]
      Compare a directory on disk with the snapshot's manifest.`;

const FLAGS: Record<string, FlagSpec> = {
  manifest: { type: 'string' },
  level: { type: 'string' },
  mtime: { type: 'string' },
  version: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export const snapshotCommand: Command = {
  name: 'snapshot',
  summary: 'create, restore, inspect and verify deterministic tar.zst snapshots',
  usage: USAGE,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    const { flags, positionals: pos } = parseArgs(rest, FLAGS, `snapshot ${sub ?? ''}`.trim());
    if (!sub || sub === '--help' || sub === '-h' || flags.help) {
      io.out(USAGE);
      return sub ? 0 : 2;
    }
    const manifest = typeof flags.manifest === 'string' ? resolve(io.cwd, flags.manifest) : undefined;
    const want = (n: number, what: string) => {
      if (pos.length !== n) throw usageError('E_USAGE', `snapshot ${sub}: expected ${what} (see rocmflow snapshot --help)`);
      return pos.map((p) => resolve(io.cwd, p));
    };
    if (sub === 'create') {
      const [dir, out] = want(2, 'DIR and OUT.tar.zst');
      const info = await snapshot({
        source: dir!,
        out: out!,
        manifestOut: manifest,
        level: intOption(flags.level, 'level'),
        mtime: intOption(flags.mtime, 'mtime'),
        version: typeof flags.version === 'string' ? flags.version : undefined,
        signal: io.signal,
      });
      print(info, io, !!flags.json);
      return 0;
    }
    if (sub === 'restore') {
      const [snap, dir] = want(2, 'SNAPSHOT and DIR');
      const info = await restoreSnapshot(snap!, dir!, { manifest, signal: io.signal });
      io.out(`restored ${info.totals.files.toLocaleString('en-US')} files (${humanBytes(info.totals.bytes)}) into ${dir}: verified against ${info.manifest}`);
      return 0;
    }
    if (sub === 'info') {
      const [snap] = want(1, 'SNAPSHOT');
      print(await snapshotInfo(snap!, manifest), io, !!flags.json);
      return 0;
    }
    if (sub === 'verify') {
      const [snap, dir] = want(2, 'SNAPSHOT and DIR');
      const m = manifest ?? manifestPathFor(snap!);
      const problems = await verifyTree(dir!, await readManifest(m));
      if (problems.length)
        throw new RocmflowError('E_SNAPSHOT_MISMATCH', `${dir} differs from ${m} (${problems.length} difference${problems.length > 1 ? 's' : ''})`, { details: problems.slice(0, 50) });
      io.out(`${dir} matches ${m}`);
      return 0;
    }
    throw usageError('E_USAGE', `snapshot: unknown subcommand ${JSON.stringify(sub)} (create, restore, info, verify)`);
  },
};

function intOption(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw usageError('E_USAGE', `snapshot: --${name} expects a non-negative integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

function print(info: SnapshotInfo, io: CommandIO, json: boolean): void {
  if (json) {
    io.out(JSON.stringify(info, null, 2));
    return;
  }
  const t = info.totals;
  io.out(`snapshot  ${info.archive}`);
  io.out(`manifest  ${info.manifest}`);
  if (info.version) io.out(`version   ${info.version}`);
  io.out(`entries   ${t.files} files, ${t.dirs} dirs, ${t.symlinks} symlinks, ${t.hardlinks} hardlinks`);
  io.out(`size      ${humanBytes(info.uncompressedSize)} tar → ${humanBytes(info.size)} (${info.mediaType})`);
  io.out(`digest    ${info.digest}`);
  io.out(`diff_id   ${info.diffId}`);
}
