import { writeFile } from 'node:fs/promises';
import type { EnvConfig } from '../../shared/config/env.js';
import { readModelJson } from '../../shared/dlsr/model-json.js';
import { OodError } from '../../shared/errors.js';
import { evaluateScores, formatEvalTable, type EvalReport, type EvalSet } from '../../shared/eval.js';
import { stableHash } from '../../shared/hash.js';
import { rocCurve } from '../../shared/metrics.js';
import { OUTPUT_FILES, readScoreParts, type RunSummary } from '../../shared/outputs/score-files.js';
import { renderEvalHtml, rocSvg } from '../../shared/report/render.js';
import { getJson, joinKey } from '../../shared/storage/object-store.js';
import { joinUri, type Location } from '../../shared/storage/locate.js';
import { openLocation } from '../../shared/storage/open.js';
import { assertWritable, planScan } from '../../producers/plan.js';
import { absolute, backendChoice, BACKEND_OPTION, int, maxBytes, parse, primaryOption, required, shardSize, str } from '../options.js';
import { cliLog, printResult } from '../output.js';
import { openRunner } from '../run.js';

/** Every option `eval` accepts (its --help lists each one; a unit test holds it to that). */
export const EVAL_FLAGS = {
  model: { type: 'string' },
  id: { type: 'string' },
  ood: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  'json-file': { type: 'string' },
  html: { type: 'string' },
  primary: { type: 'string' },
  limit: { type: 'string' },
  work: { type: 'string' },
  'shard-size': { type: 'string' },
  'max-bytes': { type: 'string' },
  workers: { type: 'string' },
  'in-process': { type: 'boolean' },
  ...BACKEND_OPTION,
} as const;

export const EVAL_USAGE = `ood-audit eval --model <loc> --id <loc> --ood <name>=<loc> [--ood ...] [--json] [--json-file <file>] [--limit N]
  The paper's protocol: scans an ID test set and each OOD set through the pipeline and reports
  AUROC, FPR at 95% TPR, AUPR-in and AUPR-out for every score type (DLSR's and the Mahalanobis and
  kNN baselines), as a table and as JSON.
  --json          print one JSON document on stdout instead of the table (progress and logs on stderr)
  --json-file <file>  also write the JSON to a file ("--json <file>" is the same, kept for old scripts)
  --limit N       at most N images per set (an evenly spread, deterministic subset)
  --work <loc>    where the per-set scans are written (default <model>/.eval)
  --html <file>   also write an HTML page with the table and ROC curves (primary score)
  --primary SCORE the score that flags images and draws the ROC curves (default: the model's)
  --shard-size N  images per shard (default 1000)
  --max-bytes N   largest image file read (default 256 MiB); larger files are failures
  --workers N     local worker processes to start if none serves the queues (default: one per core)
  --in-process    run every job in this process, without Redis and workers (same outputs)
  --backend B     auto (default) | onnx | onnx-cuda | tensorflow-gpu | tensorflow | wasm | cpu
  --log-format F  log lines on stderr: text (default) | json
  eval has no --fail-on: it measures a detector on labelled sets, it does not judge a dataset.`;

/** "--json <file>" (a value that is not an option) is the old spelling of --json-file <file>. */
export function evalArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a === '--json' && next !== undefined && !next.startsWith('-')) {
      out.push('--json-file', next);
      i++;
    } else if (a.startsWith('--json=')) out.push(`--json-file=${a.slice('--json='.length)}`);
    else out.push(a);
  }
  return out;
}

interface SetArg {
  readonly name: string;
  readonly uri: string;
  readonly loc: Location;
}

export async function evalCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const v = parse(evalArgs(argv), EVAL_FLAGS);
  const open = (uri: string, mustExist = false): Location => openLocation(uri, env, mustExist);
  const modelUri = absolute(required(v, 'model'));
  const idUri = absolute(required(v, 'id'));
  const oodArgs = (v['ood'] as string[] | undefined) ?? [];
  if (oodArgs.length === 0) throw new OodError('CONFIG_INVALID', 'missing --ood <name>=<loc> (at least one OOD set)');
  const sets: SetArg[] = [{ name: 'id', uri: idUri, loc: open(idUri, true) }];
  for (const arg of oodArgs) {
    const eq = arg.indexOf('=');
    if (eq <= 0 || eq === arg.length - 1) throw new OodError('CONFIG_INVALID', `invalid --ood: expected <name>=<loc>, got ${JSON.stringify(arg)}`);
    const uri = absolute(arg.slice(eq + 1));
    sets.push({ name: arg.slice(0, eq), uri, loc: open(uri, true) });
  }
  if (new Set(sets.map((s) => s.name)).size !== sets.length) throw new OodError('CONFIG_INVALID', 'invalid --ood: set names must be unique and not "id"');
  const limit = int(v, 'limit', 1);
  const size = shardSize(v);
  const workers = int(v, 'workers', 1, 256);
  const backend = backendChoice(v);
  const { primary: chosen } = primaryOption(v);
  const workRoot = absolute(str(v, 'work') ?? joinUri(modelUri, '.eval'));
  const log = cliLog(env);
  await assertWritable(open(workRoot));
  const plans = [];
  for (const set of sets) {
    const out = joinUri(workRoot, `${set.name}-${stableHash(set.uri, limit ?? 'all').slice(0, 8)}`);
    const plan = await planScan({ input: set.loc, model: modelUri, out, shardSize: size, maxBytes: maxBytes(v), ...(limit !== undefined ? { limit } : {}), incremental: false, recordState: false, ...(chosen !== undefined ? { primary: chosen } : {}), open });
    plans.push({ set, out, plan });
  }
  const roots = [modelUri, workRoot, ...sets.map((s) => s.uri)];
  const runner = await openRunner(env, { inProcess: v['in-process'] === true, needs: ['extract', 'score', 'group', 'report'], roots, log, ...(workers !== undefined ? { workers } : {}), ...(backend !== undefined ? { backend } : {}) });
  const scored: EvalSet[] = [];
  try {
    for (const { set, out, plan } of plans) {
      await runner.scan(plan, { what: `[${set.name}] ${set.uri}`, listed: (r) => `${r.images} images in ${r.shards} shards` });
      const o = open(out);
      const summary = await getJson<RunSummary>(o.store, joinKey(o.prefix, OUTPUT_FILES.summary));
      const parts = await readScoreParts(o.store, o.prefix);
      scored.push({
        table: parts.table,
        failed: summary.input.failed,
        extractSeconds: summary.input.images / Math.max(summary.throughput.extractImgPerS, 1e-9),
        scoreSeconds: summary.input.scored / Math.max(summary.throughput.scoreImgPerS, 1e-9),
      });
    }
  } finally {
    await runner.close();
  }
  const [id, ...oods] = scored;
  const report: EvalReport = evaluateScores(id!, Object.fromEntries(oods.map((s, i) => [sets[i + 1]!.name, s])));
  printResult(v['json'] === true, { command: 'eval', model: modelUri, inputs: Object.fromEntries(sets.map((s) => [s.name, s.uri])), ...report }, () => formatEvalTable(report));
  const jsonPath = str(v, 'json-file');
  if (jsonPath !== undefined) {
    await writeFile(jsonPath, JSON.stringify(report, null, 2) + '\n');
    log(`wrote ${jsonPath}`);
  }
  const htmlPath = str(v, 'html');
  if (htmlPath !== undefined) {
    const model = open(modelUri, true);
    const primary = chosen ?? (await readModelJson(model.store, model.prefix)).config.scoring.primary;
    const curves = oods.flatMap((s, i) => {
      const idCol = id!.table.scores[primary];
      const oodCol = s.table.scores[primary];
      return idCol !== undefined && oodCol !== undefined ? [{ name: sets[i + 1]!.name, ...rocCurve(idCol, oodCol) }] : [];
    });
    await writeFile(htmlPath, renderEvalHtml(report, modelUri, primary, rocSvg(curves, 320)));
    log(`wrote ${htmlPath}`);
  }
}
