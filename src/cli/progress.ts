/**
 * Progress for long steps: on a TTY one line redrawn in place (done/total, rate, ETA); otherwise a
 * plain line at most every few seconds and at the end, so logs stay readable.
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

export function progress(label: string, total: number, unit: string, stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  const tty = stream.isTTY === true;
  const started = performance.now();
  let lastPrint = 0;
  let last = 0;
  const render = (done: number, extra: string | undefined, final: boolean): string => {
    const secs = (performance.now() - started) / 1000;
    const rate = done / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    const tail = final ? `in ${formatDuration(secs)}` : `ETA ${formatDuration(eta)}`;
    return `[${label}] ${done}/${total} ${unit} (${pct}%) ${rate.toFixed(1)} ${unit}/s ${tail}${extra !== undefined ? ` ${extra}` : ''}`;
  };
  return {
    setTotal(n: number): void {
      total = n;
    },
    update(done: number, extra?: string): void {
      last = done;
      const now = performance.now();
      if (tty) {
        if (now - lastPrint < 100) return;
        lastPrint = now;
        stream.write(`\r\x1b[2K${render(done, extra, false)}`);
      } else if (now - lastPrint >= 5000 || lastPrint === 0) {
        lastPrint = now;
        stream.write(`${render(done, extra, false)}\n`);
      }
    },
    done(extra?: string): void {
      stream.write(`${tty ? '\r\x1b[2K' : ''}${render(last === 0 ? total : last, extra, true)}\n`);
    },
  };
}
