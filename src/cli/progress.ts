import type { BuildEvent } from '../build/types.js';
import { UsageError } from '../errors.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'rawjson' | 'quiet';

export interface ProgressPrinter {
  onEvent(e: BuildEvent): void;
  /** Stop timers, print the final frame. */
  close(): void;
}

export function parseProgressMode(v: string | undefined): ProgressMode {
  const m = v ?? 'auto';
  if (!['auto', 'tty', 'plain', 'rawjson', 'quiet'].includes(m)) {
    throw new UsageError(`Invalid --progress "${m}"`, { hint: 'Use auto, tty, plain, rawjson or quiet.' });
  }
  return m as ProgressMode;
}

/** Pick the printer for a mode (auto: tty when the stream is a terminal, else plain). */
export function createProgress(mode: ProgressMode, out: NodeJS.WritableStream): ProgressPrinter {
  const isTty = (out as { isTTY?: boolean }).isTTY === true;
  if (mode === 'quiet') return { onEvent: () => undefined, close: () => undefined };
  if (mode === 'rawjson') return { onEvent: (e) => out.write(JSON.stringify(e) + '\n'), close: () => undefined };
  if (mode === 'tty' || (mode === 'auto' && isTty)) return new TtyProgress(out);
  return new PlainProgress(out);
}

/** BuildKit's plain output: "#N name", output lines "#N 1.234 line", "#N DONE 0.5s" / "#N CACHED". */
class PlainProgress implements ProgressPrinter {
  private readonly ids = new Map<string, number>();
  private readonly start = new Map<string, number>();
  private readonly partial = new Map<string, string>();
  constructor(private readonly out: NodeJS.WritableStream) {}

  private num(id: string): number {
    let n = this.ids.get(id);
    if (n === undefined) {
      n = this.ids.size + 1;
      this.ids.set(id, n);
    }
    return n;
  }

  onEvent(e: BuildEvent): void {
    const w = (s: string) => this.out.write(s + '\n');
    switch (e.type) {
      case 'step-start':
        this.start.set(e.id, e.time);
        w(`#${this.num(e.id)} ${e.name}`);
        break;
      case 'step-log': {
        const n = this.num(e.id);
        const t = ((e.time - (this.start.get(e.id) ?? e.time)) / 1000).toFixed(3);
        const text = (this.partial.get(e.id) ?? '') + e.data;
        const lines = text.split('\n');
        this.partial.set(e.id, lines.pop()!);
        for (const l of lines) w(`#${n} ${t} ${l}`);
        break;
      }
      case 'step-done': {
        const n = this.num(e.id);
        const rest = this.partial.get(e.id);
        if (rest) w(`#${n} ${rest}`);
        this.partial.delete(e.id);
        if (e.error) w(`#${n} ERROR: ${e.error}`);
        else if (e.cached) w(`#${n} CACHED`);
        else w(`#${n} DONE ${(e.durationMs / 1000).toFixed(1)}s`);
        w('');
        break;
      }
      case 'explain':
        w(`explain: ${e.hit ? 'HIT ' : 'MISS'} ${e.name}${e.reasons.length ? `\n  ${e.reasons.join('\n  ')}` : ''}`);
        break;
      case 'warning':
        w(`WARNING: ${e.message}`);
        break;
      case 'info':
        w(e.message);
        break;
    }
  }
  close(): void {}
}

/** One line per step, redrawn with a running timer (BuildKit's tty view), logs of the running steps below. */
class TtyProgress implements ProgressPrinter {
  private readonly steps: Array<{ id: string; name: string; start: number; end?: number; cached?: boolean; error?: string; log: string[] }> = [];
  private readonly notes: string[] = [];
  private lines = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly t0 = Date.now();
  constructor(private readonly out: NodeJS.WritableStream) {
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
  }

  onEvent(e: BuildEvent): void {
    switch (e.type) {
      case 'step-start':
        this.steps.push({ id: e.id, name: e.name, start: e.time, log: [] });
        break;
      case 'step-log': {
        const s = this.steps.find((x) => x.id === e.id && x.end === undefined);
        if (s) s.log = [...s.log, ...e.data.split('\n').filter(Boolean)].slice(-6);
        break;
      }
      case 'step-done': {
        const s = this.steps.find((x) => x.id === e.id && x.end === undefined);
        if (s) {
          s.end = e.time;
          s.cached = e.cached;
          if (e.error) {
            s.error = e.error;
            this.notes.push(...s.log.map((l) => `  > ${l}`));
          }
        }
        break;
      }
      case 'explain':
        this.notes.push(`explain: ${e.hit ? 'HIT ' : 'MISS'} ${e.name}${e.reasons.length ? ` — ${e.reasons.join('; ')}` : ''}`);
        break;
      case 'warning':
        this.notes.push(`WARNING: ${e.message}`);
        break;
      case 'info':
        this.notes.push(e.message);
        break;
    }
  }

  private frame(): string[] {
    const total = ((Date.now() - this.t0) / 1000).toFixed(1);
    const rows = [`[+] Building ${total}s (${this.steps.filter((s) => s.end !== undefined).length}/${this.steps.length})`];
    for (const s of this.steps) {
      const secs = (((s.end ?? Date.now()) - s.start) / 1000).toFixed(1);
      const state = s.error ? 'ERROR' : s.cached ? 'CACHED' : s.end !== undefined ? `${secs}s` : `${secs}s`;
      rows.push(` => ${s.end === undefined ? '' : ''}${s.name}`.slice(0, 100).padEnd(100) + ` ${state}`);
      if (s.end === undefined) for (const l of s.log) rows.push(` => # ${l}`.slice(0, 110));
    }
    return [...rows, ...this.notes];
  }

  private draw(): void {
    const f = this.frame();
    let s = '';
    if (this.lines > 0) s += `\x1b[${this.lines}A`;
    for (const l of f) s += `\x1b[2K${l}\n`;
    this.out.write(s);
    this.lines = f.length;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.draw();
  }
}
