/**
 * Progress of long steps, one line per stage (extract, score, train), and the CLI's log lines on
 * the same stream without tearing each other:
 *   - on a TTY the running stages are a block of lines at the bottom, redrawn in place with ANSI
 *     cursor moves (at most every 100 ms); a log line is written above the block, and a finished
 *     stage's last line stays above it;
 *   - otherwise (a pipe, a file, CI) plain lines: one per stage at most every 5 s, and its last.
 * Rates and ETAs count from the first completed item, so worker start-up (forking, loading the
 * encoder) never dilutes them; the final line says how long the first item took.
 */
export interface ProgressLine {
  update(done: number, extra?: string): void;
  /** The total can grow while the work is being planned (a listing still running). */
  setTotal(total: number): void;
  done(extra?: string): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The figures of one stage at a time `now` (ms), from when it started and its first completed item. */
export interface StageClock {
  readonly started: number;
  /** When the first completed item was seen, and how many were done then. */
  readonly first?: { readonly at: number; readonly done: number };
}

/** Items per second since the first completed item, or undefined before there are two observations apart. */
export function stageRate(clock: StageClock, done: number, now: number): number | undefined {
  if (clock.first === undefined) return undefined;
  const secs = (now - clock.first.at) / 1000;
  const n = done - clock.first.done;
  return secs >= 0.5 && n > 0 ? n / secs : undefined;
}

/** One line of a stage: "[score] 120/204 img (58%) 41.3 img/s ETA 2s" (no rate before the first item). */
export function renderStage(label: string, unit: string, total: number, done: number, clock: StageClock, now: number, final: boolean, extra?: string): string {
  const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
  const rate = stageRate(clock, done, now);
  const parts = [`[${label}] ${done}/${total} ${unit} (${pct}%)`];
  if (rate !== undefined) parts.push(`${rate.toFixed(1)} ${unit}/s`);
  if (final) {
    parts.push(`in ${formatDuration((now - clock.started) / 1000)}`);
    if (clock.first !== undefined && clock.first.at - clock.started >= 1000) parts.push(`(first after ${formatDuration((clock.first.at - clock.started) / 1000)})`);
  } else if (rate !== undefined) parts.push(`ETA ${formatDuration((total - done) / rate)}`);
  else if (done === 0) parts.push('starting');
  if (extra !== undefined) parts.push(extra);
  return parts.join(' ');
}

interface Stage {
  readonly label: string;
  readonly unit: string;
  total: number;
  done: number;
  extra?: string;
  clock: { started: number; first?: { at: number; done: number } };
  lastPrint: number;
}

/** The CLI's stderr: progress stages and log lines, one line each. */
export interface Terminal {
  /** Writes one log line (without its newline) above the running stages. */
  log(line: string): void;
  /** A stage's progress line. */
  bar(label: string, total: number, unit: string): ProgressLine;
  /** Leaves the running stages as printed and stops redrawing them (before an error message). */
  settle(): void;
}

export function createTerminal(stream: NodeJS.WriteStream, tty = stream.isTTY === true, now: () => number = () => performance.now()): Terminal {
  const live: Stage[] = [];
  let drawn = 0;
  let lastDraw = 0;
  const width = (): number => Math.max(20, (stream.columns ?? 120) - 1);
  const clear = (): string => (drawn > 0 ? `\x1b[${drawn}A\r\x1b[J` : '');
  const block = (): string => live.map((s) => `${renderStage(s.label, s.unit, s.total, s.done, s.clock, now(), false, s.extra).slice(0, width())}\n`).join('');
  const redraw = (before = ''): void => {
    const out = clear() + before + block();
    drawn = live.length;
    lastDraw = now();
    if (out !== '') stream.write(out);
  };
  return {
    log(line) {
      if (tty && drawn > 0) redraw(`${line}\n`);
      else stream.write(`${line}\n`);
    },
    bar(label, total, unit) {
      const s: Stage = { label, unit, total, done: 0, clock: { started: now() }, lastPrint: 0 };
      let finished = false;
      if (tty) {
        live.push(s);
        redraw();
      }
      const observe = (done: number): void => {
        s.done = done;
        if (s.clock.first === undefined && done > 0) s.clock.first = { at: now(), done };
      };
      return {
        setTotal(n) {
          s.total = n;
        },
        update(done, extra) {
          if (finished) return;
          observe(done);
          if (extra !== undefined) s.extra = extra;
          else delete s.extra;
          const t = now();
          if (tty) {
            if (t - lastDraw >= 100) redraw();
          } else if (s.lastPrint === 0 || t - s.lastPrint >= 5000) {
            s.lastPrint = t;
            stream.write(`${renderStage(label, unit, s.total, s.done, s.clock, t, false, s.extra)}\n`);
          }
        },
        done(extra) {
          if (finished) return;
          finished = true;
          observe(s.done === 0 ? s.total : s.done);
          const line = renderStage(label, unit, s.total, s.done, s.clock, now(), true, extra);
          const i = live.indexOf(s);
          if (i >= 0) {
            live.splice(i, 1);
            redraw(`${line}\n`);
          } else stream.write(`${line}\n`);
        },
      };
    },
    settle() {
      live.length = 0;
      drawn = 0;
    },
  };
}

let stderrTerminal: Terminal | undefined;

/** The process's stderr terminal (one, so stages and log lines share it). */
export function terminal(): Terminal {
  stderrTerminal ??= createTerminal(process.stderr);
  return stderrTerminal;
}

/** A stage's progress line on stderr. */
export function progress(label: string, total: number, unit: string): ProgressLine {
  return terminal().bar(label, total, unit);
}
