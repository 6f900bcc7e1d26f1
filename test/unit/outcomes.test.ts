/**
 * Outcomes machines can act on, without services: --fail-on exit statuses, the metric registry's
 * names (the standard Node.js process metrics) and queue-wide de-duplication, log lines, progress
 * stages, and every option of scan / eval / fit / status listed in its --help.
 */
import { describe, expect, it } from 'vitest';
import { SCAN_FLAGS, SCAN_USAGE, failOn } from '../../src/cli/commands/scan.js';
import { EVAL_FLAGS, EVAL_USAGE, evalArgs } from '../../src/cli/commands/eval.js';
import { FIT_FLAGS, FIT_USAGE } from '../../src/cli/commands/fit.js';
import { STATUS_FLAGS, STATUS_USAGE } from '../../src/cli/commands/status.js';
import { forwardWorkerLines } from '../../src/cli/pipeline.js';
import { createTerminal, renderStage } from '../../src/cli/progress.js';
import { formatLogLine, lineSplitter, parseLogLine, type LogFields } from '../../src/shared/log.js';
import { inputId, shortLocation } from '../../src/shared/queue/outcomes.js';
import { verdictExitCode } from '../../src/shared/report/verdict.js';
import { createMetricsRegistry, type QueueWideSource } from '../../src/workers/metrics.js';

describe('--fail-on', () => {
  it('maps verdicts to exit statuses distinct from errors (1, 2)', () => {
    expect(verdictExitCode('shifted', 'never')).toBe(0);
    expect(verdictExitCode('shifted', 'shifted')).toBe(3);
    expect(verdictExitCode('possibly shifted', 'shifted')).toBe(0);
    expect(verdictExitCode('possibly shifted', 'possibly')).toBe(4);
    expect(verdictExitCode('shifted', 'possibly')).toBe(3);
    expect(verdictExitCode('no shift detected', 'possibly')).toBe(0);
    expect(verdictExitCode('too few images', 'possibly')).toBe(0);
    expect(failOn(undefined)).toBe('never');
    expect(() => failOn('always')).toThrow(/invalid --fail-on: expected shifted \| possibly \| never, got "always"/);
  });
});

describe('help', () => {
  it.each([
    ['scan', SCAN_FLAGS, SCAN_USAGE],
    ['eval', EVAL_FLAGS, EVAL_USAGE],
    ['fit', FIT_FLAGS, FIT_USAGE],
    ['status', STATUS_FLAGS, STATUS_USAGE],
  ] as const)('%s --help lists every option it accepts', (_name, flags, usage) => {
    for (const f of Object.keys(flags)) expect(usage, f).toMatch(new RegExp(`--${f}\\b`));
    expect(usage).toContain('--log-format');
  });

  it('fit --help says <loc> where any location works', () => {
    expect(FIT_USAGE).not.toContain('<dir');
    expect(FIT_USAGE).toMatch(/--encoder-uri <loc>/);
  });

  it('eval: --json is a flag, --json <file> the old spelling of --json-file', () => {
    expect(evalArgs(['--json', 'out.json', '--limit', '3'])).toEqual(['--json-file', 'out.json', '--limit', '3']);
    expect(evalArgs(['--json', '--limit', '3'])).toEqual(['--json', '--limit', '3']);
    expect(evalArgs(['--json=a.json'])).toEqual(['--json-file=a.json']);
  });
});

const fakeSource = (exporter: boolean): QueueWideSource => ({
  isExporter: () => Promise.resolve(exporter),
  jobCounts: () => Promise.resolve(new Map([['score', { completed: 7, failed: 1 }]])),
  outcomes: () => Promise.resolve([{ input: 's3://lake/night/', inputId: inputId('s3://lake/night/'), out: 's3://r/1/', runId: 'scan-0123456789abcdef', verdict: 'shifted', scored: 200, failed: 4, flagged: 48, flaggedFraction: 0.24, at: 1_700_000_000_000 }]),
});

describe('worker metrics', () => {
  it('uses the standard Node.js process metric names', async () => {
    const text = await createMetricsRegistry(fakeSource(true), () => []).registry.metrics();
    for (const name of ['process_cpu_seconds_total', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_version_info', 'nodejs_gc_duration_seconds']) {
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(text).not.toMatch(/ood_audit_process_/);
  });

  it('exports the queue-wide gauges only on the elected exporter, so a sum across workers counts them once', async () => {
    const workers = [createMetricsRegistry(fakeSource(true), () => []), createMetricsRegistry(fakeSource(false), () => []), createMetricsRegistry(fakeSource(false), () => [])];
    const texts = await Promise.all(workers.map((w) => w.registry.metrics()));
    const sum = (re: RegExp): number => texts.reduce((s, t) => s + [...t.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0), 0);
    expect(sum(/^ood_audit_jobs\{queue="score",state="completed"\} (\S+)$/gm)).toBe(7);
    expect(sum(/^ood_audit_metrics_exporter (\S+)$/gm)).toBe(1);
    const id = inputId('s3://lake/night/');
    expect(texts[0]).toContain(`ood_audit_last_flagged_fraction{input="s3://lake/night/",input_id="${id}"} 0.24`);
    expect(texts[0]).toContain(`ood_audit_last_verdict_level{input="s3://lake/night/",input_id="${id}"} 3`);
    expect(texts[0]).toContain(`ood_audit_last_success_timestamp_seconds{input="s3://lake/night/",input_id="${id}"} 1700000000`);
    expect(texts[0]).toContain(`ood_audit_last_images_scanned{input="s3://lake/night/",input_id="${id}"} 200`);
    expect(texts[0]).toContain(`ood_audit_last_image_failures{input="s3://lake/night/",input_id="${id}"} 4`);
    expect(texts[1]).not.toMatch(/^ood_audit_last_flagged_fraction\{/m);
  });

  it("counts a cached shard's image failures, and the sandboxed children's memory", async () => {
    const m = createMetricsRegistry(fakeSource(false), () => [process.pid]);
    m.observe('score', { returnvalue: { images: 50, failed: 2, cached: true, failuresByReason: { 'empty file': 2 } }, finishedOn: 2000, processedOn: 1000 }, 'completed');
    m.observe('score', { returnvalue: { images: 50, failed: 1, cached: true }, finishedOn: 2000, processedOn: 1000 }, 'completed');
    const text = await m.registry.metrics();
    expect(text).toMatch(/^ood_audit_image_failures_total\{reason="empty file"\} 2$/m);
    expect(text).toMatch(/^ood_audit_image_failures_total\{reason="unknown"\} 1$/m);
    expect(text).toMatch(/^ood_audit_images_processed_total\{queue="score"\} 100$/m);
    expect(text).not.toMatch(/ood_audit_images_processed_total\{queue="extract"\}/);
    expect(text).toMatch(/^ood_audit_sandbox_processes 1$/m);
    const rss = Number(/^ood_audit_sandbox_resident_memory_bytes (\d+)$/m.exec(text)?.[1]);
    expect(rss).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('keeps input labels short', () => {
    const long = `s3://bucket/${'a'.repeat(300)}/night/`;
    expect(shortLocation(long).length).toBeLessThanOrEqual(96);
    expect(shortLocation(long)).toMatch(/^s3:\/\/bucket\/a+\.\.\.a+\/night\/$/);
    expect(inputId(long)).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('log lines', () => {
  it('one line per event, text or JSON', () => {
    expect(formatLogLine('text', 'a\nb\n  c', {}, { time: false })).toBe('a | b | c');
    const j = parseLogLine(formatLogLine('json', 'job 3 failed:\nboom', { level: 'warn', queue: 'score', job: '3' }));
    expect(j).toMatchObject({ level: 'warn', msg: 'job 3 failed: | boom', queue: 'score', job: '3', pid: process.pid });
    expect(formatLogLine('json', 'x'.repeat(100_000)).length).toBeLessThan(4096);
  });

  it('re-emits whole lines of a local worker, whatever the chunks', () => {
    const got: { m: string; f: LogFields | undefined }[] = [];
    const fwd = forwardWorkerLines(42, (m, f) => got.push({ m, f }));
    const line = formatLogLine('json', '[score] job 9 failed (attempt 1): boom', { level: 'warn', queue: 'score' });
    const info = formatLogLine('json', 'serving', {});
    const all = `${info}\nnoise from a library\n${line}\n`;
    for (let i = 0; i < all.length; i += 7) fwd.push(all.slice(i, i + 7));
    fwd.flush();
    expect(got).toHaveLength(1);
    expect(got[0]!.m).toBe('worker 42: [score] job 9 failed (attempt 1): boom');
    expect(got[0]!.f).toMatchObject({ level: 'warn', queue: 'score', workerPid: 42 });
    const parts: string[] = [];
    const s = lineSplitter((l) => parts.push(l));
    s.push('ab');
    s.push('c\nde\r\n');
    s.push('f');
    s.flush();
    expect(parts).toEqual(['abc', 'de', 'f']);
  });
});

/** A fake stream that records writes. */
function fakeStream(tty: boolean): { stream: NodeJS.WriteStream; out: () => string } {
  let buf = '';
  const stream = { isTTY: tty, columns: 100, write: (s: string) => ((buf += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, out: () => buf };
}

describe('progress', () => {
  it('counts the rate from the first completed item, not from start-up', () => {
    // Started at 0; workers took 20 s to start; the first 10 images at 20 s, 110 at 30 s: 10 img/s.
    const clock = { started: 0, first: { at: 20_000, done: 10 } };
    expect(renderStage('score', 'img', 200, 110, clock, 30_000, false)).toBe('[score] 110/200 img (55%) 10.0 img/s ETA 9s');
    expect(renderStage('score', 'img', 200, 0, { started: 0 }, 30_000, false)).toBe('[score] 0/200 img (0%) starting');
    expect(renderStage('score', 'img', 200, 200, clock, 39_000, true)).toBe('[score] 200/200 img (100%) 10.0 img/s in 39s (first after 20s)');
  });

  it('on a TTY: one line per stage, redrawn in place, log lines above them', () => {
    let t = 0;
    const { stream, out } = fakeStream(true);
    const term = createTerminal(stream, true, () => t);
    const extract = term.bar('extract', 100, 'img');
    const score = term.bar('score', 100, 'img');
    t = 1000;
    extract.update(10);
    t = 2000;
    score.update(5);
    term.log('a log line');
    t = 3000;
    extract.done();
    // The screen as a terminal would show it: apply "up N lines, clear to end" by dropping lines.
    const screen: string[] = [];
    for (const m of out().matchAll(/\x1b\[(\d+)A\r\x1b\[J|([^\x1b\n]*)\n/g)) {
      if (m[1] !== undefined) screen.splice(screen.length - Number(m[1]));
      else screen.push(m[2]!);
    }
    expect(screen).toEqual(['a log line', expect.stringMatching(/^\[extract\] 10\/100 img \(10%\) in 3s/), expect.stringMatching(/^\[score\] 5\/100 img \(5%\)$/)]);
    expect(out()).not.toContain('\r\x1b[2K[');
  });

  it('without a TTY: plain lines, no escape codes', () => {
    let t = 0;
    const { stream, out } = fakeStream(false);
    const term = createTerminal(stream, false, () => t);
    const bar = term.bar('extract', 10, 'img');
    bar.update(0);
    t = 6000;
    bar.update(5);
    term.log('hello');
    bar.done();
    expect(out()).not.toContain('\x1b');
    expect(out().trim().split('\n')).toEqual(['[extract] 0/10 img (0%) starting', '[extract] 5/10 img (50%)', 'hello', '[extract] 5/10 img (50%) in 6s (first after 6s)']);
  });
});
