import type { WriteStream } from 'node:fs';
import type { Logger, Progress, ProgressHandle } from '../plugin/types.js';
import type { EventSink } from './events.js';

/** A task's logger: lines go to its log file and to the event stream. */
export function makeLogger(emit: EventSink, task: string, file?: WriteStream): Logger {
  const line = (level: 'info' | 'warn' | 'debug', msg: string) => {
    if (file && !file.writableEnded) file.write(`[${level}] ${msg}\n`);
    if (level === 'warn') emit({ type: 'warning', task, message: msg });
    else emit({ type: 'log', task, level, line: msg });
  };
  return { info: (m) => line('info', m), warn: (m) => line('warn', m), debug: (m) => line('debug', m) };
}

/** Progress events, throttled to a few per second per handle. */
export function makeProgress(emit: EventSink, task: string, intervalMs = 250): Progress {
  return {
    start(label, opts = {}): ProgressHandle {
      let total = opts.total;
      let last = 0;
      let lastDone = 0;
      const send = (done: number) => emit({ type: 'progress', task, label, done, total, unit: opts.unit });
      send(0);
      return {
        update(done, t) {
          if (t !== undefined) total = t;
          lastDone = done;
          const now = Date.now();
          if (now - last >= intervalMs) {
            last = now;
            send(done);
          }
        },
        done() {
          send(total ?? lastDone);
        },
      };
    },
  };
}
