import type { Command } from '../command.js';
import { COMMON_FLAGS, parseArgs } from '../args.js';
import { openSession } from '../session.js';
import { ContentStore } from '../../cache/content-store.js';
import { gcCache, listBlobs, strayWarning, verifyCache } from '../../cache/gc.js';
import type { ActionEntry } from '../../cache/action-entry.js';
import { manifestBytes } from '../../cache/output-manifest.js';
import { formatBytes, formatMs, parseSize } from '../../report/format.js';
import { usageError } from '../../errors.js';

export const cacheCommand: Command = {
  name: 'cache',
  summary: 'inspect and maintain the cache: ls, stats, verify, gc, push, pull',
  usage: `rocmflow cache ls [--json]
rocmflow cache stats [--json]
rocmflow cache verify
rocmflow cache gc --max-size SIZE      (e.g. 20G)
rocmflow cache push [TASK...]          upload this workspace's results to the remote cache
rocmflow cache pull [TASK...]          download results for the current fingerprints`,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === 'push' || sub === 'pull') return (await import('./cache-remote.js')).cacheRemoteCommand(sub, rest, io);
    const { flags } = parseArgs(rest, { ...COMMON_FLAGS, 'max-size': { type: 'string' } }, `cache ${sub ?? ''}`.trim());
    if (!sub || !['ls', 'stats', 'verify', 'gc'].includes(sub)) throw usageError('E_USAGE', `cache: expected ls, stats, verify, gc, push or pull${sub ? `, not "${sub}"` : ''}`);
    const s = await openSession(io, { config: flags.config as string | undefined, cacheDir: flags['cache-dir'] as string | undefined });
    try {
      const index = await s.index();
      const store = new ContentStore(s.config.cacheDir);
      const onStray = (p: string) => io.err(strayWarning(p));
      if (sub === 'ls') {
        const entries = (await index.entries<ActionEntry>('action')).sort((a, b) => a[1].createdAt.localeCompare(b[1].createdAt));
        for (const [key, e] of entries) {
          if (flags.json) io.out(JSON.stringify({ key, task: e.task, target: e.target, bytes: manifestBytes(e.manifest), files: e.manifest.entries.length, createdAt: e.createdAt, durationMs: e.durationMs }));
          else io.out(`${key.slice(0, 12)}  ${e.target.padEnd(8)} ${e.task.padEnd(16)} ${formatBytes(manifestBytes(e.manifest)).padStart(9)}  ${e.createdAt}  took ${formatMs(e.durationMs)}`);
        }
        if (!flags.json && !entries.length) io.out('(cache is empty)');
        return 0;
      }
      if (sub === 'stats') {
        const blobs = listBlobs(store, onStray);
        const bytes = blobs.reduce((a, b) => a + b.size, 0);
        const entries = await index.entries<ActionEntry>('action');
        const t = (await index.get<Record<string, number>>('stats', 'totals')) ?? {};
        const stats = {
          cacheDir: s.config.cacheDir, entries: entries.length, blobs: blobs.length, bytes,
          localHits: t.localHits ?? 0, localBytes: t.localBytes ?? 0, remoteHits: t.remoteHits ?? 0, remoteBytes: t.remoteBytes ?? 0,
          savedMs: t.savedMs ?? 0, remote: s.config.remote?.url.replace(/\/\/[^@/]*@/, '//') ?? null,
        };
        if (flags.json) io.out(JSON.stringify(stats));
        else {
          io.out(`cache:       ${stats.cacheDir}`);
          io.out(`entries:     ${stats.entries} results, ${stats.blobs} blobs, ${formatBytes(bytes)} on disk`);
          io.out(`local hits:  ${stats.localHits} (${formatBytes(stats.localBytes)} restored)`);
          io.out(`remote hits: ${stats.remoteHits} (${formatBytes(stats.remoteBytes)} downloaded)`);
          io.out(`time saved:  ${formatMs(stats.savedMs)} of task runtime not repeated`);
          io.out(`remote:      ${stats.remote ?? '(none configured)'}`);
        }
        return 0;
      }
      if (sub === 'verify') {
        const r = await verifyCache(index, store, undefined, onStray);
        io.out(`verified ${r.blobs} blobs: ${r.bad.length} corrupt${r.bad.length ? ` (evicted: ${r.bad.map((d) => d.slice(0, 12)).join(', ')})` : ''}; ${r.entriesDropped.length} results dropped${r.statesDropped.length ? `; ${r.statesDropped.length} workspace outputs shared a corrupt blob and will rerun` : ''}`);
        return r.bad.length ? 1 : 0;
      }
      if (flags['max-size'] === undefined) throw usageError('E_USAGE', 'cache gc: --max-size SIZE is required (e.g. 20G, 500MB)');
      const max = parseSize(String(flags['max-size']));
      if (max === null) throw usageError('E_USAGE', `cache gc: --max-size ${JSON.stringify(String(flags['max-size']))} is not a size (e.g. 20G, 500MB, 1.5GiB)`);
      const r = await gcCache(index, store, max, onStray);
      io.out(`gc: ${formatBytes(r.before)} → ${formatBytes(r.after)}; removed ${r.entriesRemoved} results and ${r.blobsRemoved} blobs${r.layerRecordsRemoved ? `, and ${r.layerRecordsRemoved} image layer records whose blob is gone` : ''}`);
      return 0;
    } finally {
      await s.close();
    }
  },
};
