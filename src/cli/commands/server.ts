import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from '../command.js';
import { intFlag, parseArgs } from '../args.js';
import { usageError, RocmflowError } from '../../errors.js';
import { formatMs } from '../../report/format.js';
import { privateDir } from '../../util/private-dir.js';

const DEFAULT_IDLE_MIN = 60;

export const serverCommand: Command = {
  name: 'server',
  summary: 'keep a server that answers runs with nothing to do, without loading rocmflow each time',
  usage: `rocmflow server start [--idle-timeout MIN]   start it in the background (default: stops after ${DEFAULT_IDLE_MIN} min without a request)
rocmflow server stop
rocmflow server status [--json]
rocmflow server run [--idle-timeout MIN]     run it in the foreground (logs to stderr)

While it runs, \`rocmflow run\` asks it first: a run whose every task is
fresh is answered by the server; anything else (a task to hash, restore or
run, --force, --dry-run, an error) is declined before anything is written,
and the CLI runs as it does without a server. It serves this rocmflow
(this checkout or install, this Node) for this user; it stops when
rocmflow's sources change. ROCMFLOW_NO_SERVER=1 bypasses it.`,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    const { flags } = parseArgs(rest, { 'idle-timeout': { type: 'string' }, json: { type: 'boolean' } }, `server ${sub ?? ''}`.trim());
    const idleMin = intFlag(flags['idle-timeout'], 'idle-timeout', 'server') ?? DEFAULT_IDLE_MIN;
    if (idleMin < 1) throw usageError('E_USAGE', 'server: --idle-timeout: expected at least 1 (minutes)');
    const server = await import('../../server/serve.js');
    if (sub === 'run') {
      await server.serve({ idleMs: idleMin * 60_000, maxRequests: 10_000, log: (l) => io.err(`rocmflow server: ${l}`) });
      return 0;
    }
    if (sub === 'status') {
      const s = await server.serverStatus();
      if (flags.json) io.out(JSON.stringify(s ? { running: true, ...s } : { running: false }));
      else if (!s) io.out('rocmflow server: not running');
      else {
        const up = formatMs(Date.now() - Date.parse(s.startedAt));
        io.out(`rocmflow server: running (pid ${s.pid}, up ${up}): ${s.requests} runs asked, ${s.served} answered, ${s.declined} declined${s.lastDeclined ? ` (last: ${s.lastDeclined})` : ''}`);
      }
      return 0;
    }
    if (sub === 'stop') {
      io.out((await server.stopServer()) ? 'rocmflow server: stopped' : 'rocmflow server: not running');
      return 0;
    }
    if (sub === 'start') {
      if (await server.serverStatus()) {
        io.out('rocmflow server: running already');
        return 0;
      }
      const sock = await server.serverSocket();
      if (!privateDir(dirname(sock))) throw new RocmflowError('E_SERVER', `server: ${dirname(sock)} is not a directory of this user's alone; not starting`);
      const logFile = sock.replace(/\.sock$/, '.log');
      let fd: number;
      try {
        // each server's own log: the last one's is not kept
        fd = openSync(logFile, 'w', 0o600);
      } catch (e) {
        throw new RocmflowError('E_SERVER', `server: cannot write its log in ${dirname(sock)}: ${(e as Error).message}`);
      }
      const child = spawn(process.execPath, [join(server.packageRoot(), 'bin', 'rocmflow.js'), 'server', 'run', '--idle-timeout', String(idleMin)], {
        detached: true, stdio: ['ignore', fd, fd], cwd: '/', env: io.env,
      });
      closeSync(fd);
      let exited: number | null = null;
      child.on('exit', (code) => (exited = code ?? 1));
      child.unref();
      for (let i = 0; i < 300 && exited === null; i++) {
        const s = await server.serverStatus();
        if (s) {
          io.out(`rocmflow server: started (pid ${s.pid}); \`rocmflow run\` asks it first (log: ${logFile})`);
          return 0;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new RocmflowError('E_SERVER', `server: did not start${exited !== null ? ` (exit code ${exited})` : ' within 30 s'}; see ${logFile}`);
    }
    throw usageError('E_USAGE', `server: expected start, stop, status or run${sub ? `, not "${sub}"` : ''}`);
  },
};
