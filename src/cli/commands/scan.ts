import type { EnvConfig } from '../../shared/config/env.js';
import { OodError } from '../../shared/errors.js';
import { openLocation } from '../../shared/storage/open.js';
import { getJson, joinKey } from '../../shared/storage/object-store.js';
import { assertWritable, planScan } from '../../producers/plan.js';
import { SKIP_REASONS } from '../../shared/outputs/accounting.js';
import { OUTPUT_FILES, type RunSummary } from '../../shared/outputs/score-files.js';
import { describeSkipped, type ReportResult } from '../../shared/queue/contract.js';
import { FAIL_ON, VERDICT_EXIT, verdictExitCode, type FailOn } from '../../shared/report/verdict.js';
import { joinUri } from '../../shared/storage/locate.js';
import { absolute, backendChoice, BACKEND_OPTION, int, parse, required, SCAN_OPTIONS, scanSettings, str } from '../options.js';
import { cliLog, printResult } from '../output.js';
import { openRunner } from '../run.js';

/** report-files.ts's REPORT_FILES.json (that module loads sharp, which the CLI never does). */
const REPORT_JSON = 'report.json';

/** Every option `scan` accepts (its --help lists each one; a unit test holds it to that). */
export const SCAN_FLAGS = {
  model: { type: 'string' },
  input: { type: 'string' },
  out: { type: 'string' },
  workers: { type: 'string' },
  'in-process': { type: 'boolean' },
  'fail-on': { type: 'string' },
  'fail-on-new': { type: 'string' },
  json: { type: 'boolean' },
  ...SCAN_OPTIONS,
  ...BACKEND_OPTION,
} as const;

export const SCAN_USAGE = `ood-audit scan --model <loc> --input <loc> --out <loc> [--fail-on shifted|possibly|never] [--json] ...
  Scores every image under --input through the queue pipeline (locations are folders or s3://
  URIs): the listing is cut into shards as it comes (extract and score jobs per shard, a merge job
  per group of shards), then a report job writes scores/, failures/, skipped/ (part files; also
  scores.parquet, scores.csv, failures.csv and skipped.csv up to 100,000 rows), summary.json and
  report.html/json/md under --out. "ood-audit score" is the same command.
  --shard-size N   images per shard, on average (default 1000; cut where the keys say, at most twice)
  --cache <loc>    feature cache (default <model>/cache); an unchanged shard is never re-encoded
  --workers N      local worker processes to start if none serves the queues (default: one per core)
  --full           scan every image (default: only images new or changed since the last completed
                   scan of this prefix with this model; the report still describes the whole prefix,
                   the unchanged images' scores carried forward, with the new or changed apart)
  --partition-depth N  report partitions: the first N path segments below the input (default 1)
  --top-k N        images in the report's most-OOD and most-typical galleries (default 24)
  --md-style S     report.md's partitions as a table (default) or a list (for chat tools without tables)
  --primary SCORE  the score that flags images (default: the model's); its own scan state and trend
  --max-bytes N    largest image file read, in bytes (default 268435456 = 256 MiB); a larger file is
                   a failure in failures.csv, never read
  --in-process     run every job in this process, without Redis and workers (same outputs)
  --backend B      auto (default) | onnx | onnx-cuda | tensorflow-gpu | tensorflow | wasm | cpu
  --fail-on F      exit non-zero on a shift of the whole prefix (the report's headline: unchanged images'
                   scores are carried forward): shifted = exit ${VERDICT_EXIT.shifted} when the verdict (or a partition's) is
                   "shifted"; possibly = also exit ${VERDICT_EXIT.possiblyShifted} on "possibly shifted"; never (default) = exit 0.
                   Errors exit 1 (2 for bad options or configuration). The last line states the verdict.
  --fail-on-new F  the same for the images new or changed since the last scan (their own verdict);
                   when this run scanned every image (first scan, --full, a refitted model) every image
                   is new, so it judges the whole prefix; with both, the worse exit status wins (${VERDICT_EXIT.shifted} before ${VERDICT_EXIT.possiblyShifted})
  --json           print one JSON document on stdout (verdict, counts, outputs, exit status);
                   progress and logs stay on stderr
  --log-format F   log lines on stderr: text (default) | json
  Redis: REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server.`;

export function failOn(value: string | undefined, option = '--fail-on'): FailOn {
  if (value === undefined) return 'never';
  if ((FAIL_ON as readonly string[]).includes(value)) return value as FailOn;
  throw new OodError('CONFIG_INVALID', `invalid ${option}: expected ${FAIL_ON.join(' | ')}, got ${JSON.stringify(value)}`);
}

/** The document `scan --json` prints. */
export interface ScanJson {
  readonly command: 'scan';
  readonly runId: string | null;
  readonly model: string;
  readonly input: string;
  readonly out: string;
  readonly verdict: { readonly level: string; readonly text: string | null };
  /** The worst of the verdict and the partitions' (what --fail-on acts on). */
  readonly headline: { readonly level: string; readonly text: string | null };
  readonly scored: number;
  readonly failed: number;
  readonly flagged: number;
  readonly flaggedFraction: number;
  readonly expectedFraction: number;
  readonly missingShards: readonly number[];
  readonly missingShardCount: number;
  /** The images new or changed since the last scan (null: every image was scanned). The counts above are the whole prefix's. */
  readonly newOrChanged: { readonly scored: number; readonly failed: number; readonly flagged: number; readonly flaggedFraction: number; readonly verdict: string; readonly headline: string } | null;
  readonly outputs: { readonly summary: string; readonly report: string };
  readonly failOn: FailOn;
  readonly failOnNew: FailOn;
  /** What --fail-on-new judged: the new-or-changed images, or the whole prefix when this run scanned every image. */
  readonly failOnNewScope: 'new or changed' | 'whole prefix';
  /** Why this run's scan state was not recorded (another scan of the prefix recorded its own meanwhile; the next scan plans on that one), or null. */
  readonly stateNotRecorded: string | null;
  readonly exitCode: number;
}

/** The exit status of two --fail-on checks: shifted (3) before possibly shifted (4) before 0. */
export function worseExit(a: number, b: number): number {
  const rank = (c: number): number => (c === VERDICT_EXIT.shifted ? 2 : c === VERDICT_EXIT.possiblyShifted ? 1 : 0);
  return rank(b) > rank(a) ? b : a;
}

export async function scanCommand(argv: readonly string[], env: EnvConfig): Promise<number> {
  const v = parse(argv, SCAN_FLAGS);
  const modelUri = absolute(required(v, 'model'));
  const inputUri = absolute(required(v, 'input'));
  const outUri = absolute(required(v, 'out'));
  const settings = scanSettings(v);
  const workers = int(v, 'workers', 1, 256);
  const backend = backendChoice(v);
  const fail = failOn(str(v, 'fail-on'));
  const failNew = failOn(str(v, 'fail-on-new'), '--fail-on-new');
  const json = v['json'] === true;
  const log = cliLog(env);
  const open = (uri: string, mustExist = false): ReturnType<typeof openLocation> => openLocation(uri, env, mustExist);
  const plan = await planScan({
    input: open(inputUri, true),
    model: modelUri,
    out: outUri,
    ...(settings.cache !== undefined ? { cache: settings.cache } : {}),
    shardSize: settings.shardSize,
    incremental: !settings.full,
    recordState: true,
    partitionDepth: settings.partitionDepth,
    topK: settings.topK,
    mdStyle: settings.mdStyle,
    maxBytes: settings.maxBytes,
    ...(settings.primary !== undefined ? { primary: settings.primary } : {}),
    open,
  });
  await assertWritable(open(outUri));
  const roots = [inputUri, modelUri, outUri, ...(settings.cache !== undefined ? [settings.cache] : [])];
  const runner = await openRunner(env, { inProcess: v['in-process'] === true, needs: ['extract', 'score', 'group', 'report'], roots, log, ...(workers !== undefined ? { workers } : {}), ...(backend !== undefined ? { backend } : {}) });
  let result: ReportResult;
  try {
    result = await runner.scan(plan, {
      what: `${inputUri} -> ${outUri}${settings.full ? ' (full)' : ''}`,
      listed: (r) => {
        const full = r.skippedByReason[SKIP_REASONS.unchanged] !== undefined ? '; --full rescans unchanged images' : '';
        return `${r.listed} entries: ${r.images} images in ${r.shards} shards (skipped: ${describeSkipped(r.skippedByReason)}${full})`;
      },
    });
  } finally {
    await runner.close();
  }
  const out = openLocation(outUri, env);
  // The verdict's words and the run id, from the files the report wrote (the job result has the level).
  const report = await getJson<{ verdict?: { text?: string }; headline?: { text?: string } }>(out.store, joinKey(out.prefix, REPORT_JSON)).catch(() => undefined);
  const summary = await getJson<RunSummary>(out.store, joinKey(out.prefix, OUTPUT_FILES.summary)).catch(() => undefined);
  // The headline: a partition shifted under a milder dataset verdict counts (report.html leads with it).
  const headline = result.headline ?? result.verdict;
  const fresh = result.newOrChanged;
  // A run that scanned every image (first scan, --full, a refitted model) has no separate new section:
  // every image is new or changed, so --fail-on-new judges the whole prefix rather than nothing.
  const exitCode = worseExit(verdictExitCode(headline, fail), verdictExitCode(fresh?.headline ?? headline, failNew));
  const doc: ScanJson = {
    command: 'scan',
    runId: summary?.run?.id ?? null,
    model: modelUri,
    input: inputUri,
    out: outUri,
    verdict: { level: result.verdict, text: report?.verdict?.text ?? null },
    headline: { level: headline, text: report?.headline?.text ?? report?.verdict?.text ?? null },
    scored: result.scored,
    failed: result.failed,
    flagged: result.flagged,
    flaggedFraction: result.flaggedFraction,
    expectedFraction: result.expectedFraction,
    missingShards: result.missingShards,
    missingShardCount: result.missingShardCount,
    newOrChanged: fresh ?? null,
    outputs: { summary: joinUri(outUri, OUTPUT_FILES.summary), report: joinUri(outUri, REPORT_JSON) },
    failOn: fail,
    failOnNew: failNew,
    failOnNewScope: fresh !== undefined ? 'new or changed' : 'whole prefix',
    stateNotRecorded: result.stateNotRecorded ?? null,
    exitCode,
  };
  printResult(json, doc, () =>
    `${fresh !== undefined ? 'whole prefix: ' : ''}${result.scored} scored, ${result.failed} failed, ${result.flagged} flagged ` +
      `(${(result.flaggedFraction * 100).toFixed(1)}% vs ${(result.expectedFraction * 100).toFixed(0)}% expected in-distribution)` +
      `${result.missingShardCount > 0 ? `; ${result.missingShardCount} shards not scored (${result.missingShards.join(', ')}${result.missingShardCount > result.missingShards.length ? ', ...' : ''})` : ''}; outputs in ${outUri}\n` +
      (fresh !== undefined
        ? `new or changed since the last scan: ${fresh.scored} scored, ${fresh.failed} failed, ${fresh.flagged} flagged: ${fresh.headline}\n`
        : failNew !== 'never'
          ? 'every image was scanned by this run, so --fail-on-new judges the whole prefix\n'
          : '') +
      (result.stateNotRecorded !== undefined ? `scan state not recorded: ${result.stateNotRecorded.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')}\n` : '') +
      `verdict: ${doc.headline.text ?? headline}${exitCode !== 0 ? ` (exit ${exitCode}: ${failNew !== 'never' ? `--fail-on ${fail}, --fail-on-new ${failNew}` : `--fail-on ${fail}`})` : ''}\n`,
  );
  return exitCode;
}
