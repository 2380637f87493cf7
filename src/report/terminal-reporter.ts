/**
 * Renders run events for a person: one line per finished task, a live
 * status line for running work on a TTY (plain periodic lines otherwise),
 * and a closing summary. Honours NO_COLOR.
 */
import type { RunEvent } from '../engine/events.js';
import { formatBytes, formatMs } from './format.js';

const SYMBOL = { fresh: '✓', cached: '↓', ran: '●', failed: '✗', skipped: '-' } as const;

export class TerminalReporter {
  private readonly tty: boolean;
  private readonly color: boolean;
  private readonly running = new Map<string, { since: number; label?: string; done?: number; total?: number; unit?: string }>();
  private statusShown = false;
  private timer: NodeJS.Timeout | undefined;
  private lastPlain = new Map<string, number>();

  constructor(
    private readonly out: Pick<NodeJS.WriteStream, 'write' | 'isTTY' | 'columns'>,
    opts: { color: boolean; verbose: boolean },
  ) {
    this.tty = !!out.isTTY;
    this.color = opts.color;
    this.verbose = opts.verbose;
    if (this.tty) this.timer = setInterval(() => this.drawStatus(), 500).unref();
  }
  private readonly verbose: boolean;

  private paint(code: number, s: string): string {
    return this.color ? `\x1b[${code}m${s}\x1b[0m` : s;
  }

  private write(line: string): void {
    this.clearStatus();
    this.out.write(line + '\n');
    this.drawStatus();
  }

  private clearStatus(): void {
    if (this.tty && this.statusShown) {
      this.out.write('\r\x1b[K');
      this.statusShown = false;
    }
  }

  private progressText(p: { label?: string; done?: number; total?: number; unit?: string }): string {
    if (!p.label) return '';
    const fmt = (n: number) => (p.unit === 'bytes' ? formatBytes(n) : String(n));
    const pct = p.total ? ` ${Math.floor(((p.done ?? 0) / p.total) * 100)}%` : '';
    return ` ${p.label}${p.done !== undefined ? ` ${fmt(p.done)}${p.total ? `/${fmt(p.total)}` : ''}` : ''}${pct}`;
  }

  private drawStatus(): void {
    if (!this.tty || this.running.size === 0) return;
    const parts = [...this.running].map(([t, p]) => `${t} ${formatMs(Date.now() - p.since)}${this.progressText(p)}`);
    const line = `  … ${parts.join(' | ')}`;
    this.out.write(`\r\x1b[K${line.slice(0, (this.out.columns || 120) - 1)}`);
    this.statusShown = true;
  }

  handle(e: RunEvent): void {
    switch (e.type) {
      case 'plan':
        this.write(`rocmflow: target ${this.paint(1, e.target)} (${e.targetReason}) · ${e.tasks.length} task${e.tasks.length === 1 ? '' : 's'}: ${e.tasks.join(', ')}`);
        break;
      case 'start':
        this.running.set(e.task, { since: Date.now() });
        this.write(`  ${this.paint(36, '▶')} ${e.task} running (${e.reason})`);
        break;
      case 'progress': {
        const r = this.running.get(e.task) ?? { since: Date.now() };
        Object.assign(r, { label: e.label, done: e.done, total: e.total, unit: e.unit });
        this.running.set(e.task, r);
        if (!this.tty) {
          // plain output: a line per task every 10 s, and none for work that ends quickly
          const last = this.lastPlain.get(e.task) ?? r.since;
          if (Date.now() - last > 10_000 || (!this.lastPlain.has(e.task) && Date.now() - r.since > 2_000)) {
            this.lastPlain.set(e.task, Date.now());
            this.write(`    ${e.task}:${this.progressText(r)}`);
          }
        }
        break;
      }
      case 'log':
        if (e.level === 'info' || this.verbose)
          this.write(`    ${this.paint(2, `${e.task}:`)} ${e.line}`);
        break;
      case 'warning':
        this.write(`  ${this.paint(33, 'warning:')} ${e.task ? `${e.task}: ` : ''}${e.message}`);
        break;
      case 'task': {
        this.running.delete(e.task);
        const colour = { fresh: 32, cached: 32, ran: 36, failed: 31, skipped: 90 }[e.state];
        const extra =
          e.state === 'cached' ? ` (${e.source} cache)` : e.state === 'skipped' ? ` (${e.reason})` : e.state === 'failed' ? `: ${e.error}` : '';
        this.write(`  ${this.paint(colour, SYMBOL[e.state])} ${e.task.padEnd(16)} ${this.paint(colour, e.state.padEnd(7))} ${formatMs(e.ms).padStart(8)}${extra}`);
        for (const d of e.details ?? []) this.write(`      ${d}`);
        break;
      }
      case 'summary': {
        const c = e.counts;
        const parts = (['ran', 'cached', 'fresh', 'failed', 'skipped'] as const).filter((k) => c[k]).map((k) => `${c[k]} ${k}`);
        this.write('');
        for (const l of e.lines) this.write(l);
        if (e.lines.length) this.write('');
        this.write(`${e.ok ? this.paint(32, 'done') : this.paint(31, 'failed')}: ${parts.join(', ') || 'nothing to do'} in ${formatMs(e.ms)} (target ${e.target})`);
        if (!e.ok) {
          if (e.failed.length) this.write(`failed: ${e.failed.join(', ')}`);
          if (e.skipped.length) this.write(`skipped: ${e.skipped.join(', ')}`);
          this.write(`logs: ${e.logDir}`);
        }
        break;
      }
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.clearStatus();
  }
}
