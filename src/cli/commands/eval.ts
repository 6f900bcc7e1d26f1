import { writeFile } from 'node:fs/promises';
import { initBackend } from '../../shared/backend.js';
import { encoderForModel, extractAndScore, openModel } from '../../shared/app/operations.js';
import { listImages, spreadSample } from '../../shared/app/listing.js';
import { evaluateScores, formatEvalTable, type EvalReport, type EvalSet } from '../../shared/app/evaluate.js';
import { readScoreTable } from '../../shared/app/read-scores.js';
import type { RunSummary } from '../../shared/app/outputs.js';
import { modelIdentity } from '../../producers/model-identity.js';
import { readModelJson } from '../../shared/dlsr/artifact.js';
import { rocCurve } from '../../shared/metrics.js';
import { renderEvalHtml, rocSvg } from '../../shared/report/render.js';
import { disposeModel } from '../../shared/dlsr/model.js';
import { OodError } from '../../shared/errors.js';
import { getJson, joinKey } from '../../shared/storage/object-store.js';
import { joinUri, type Location } from '../../shared/storage/locate.js';
import { openLocation } from '../../shared/storage/open.js';
import { parseEnv, type EnvConfig } from '../../shared/config/env.js';
import { stableHash } from '../../shared/queue/contract.js';
import { enqueueScan } from '../../producers/runs.js';
import { BACKEND_OPTION, backendChoice, int, parse, required, str, type Values } from '../options.js';
import { cliContext } from '../context.js';
import { followRun, openPipeline } from '../pipeline.js';
import { absolute } from './scan.js';

export const EVAL_USAGE = `ood-audit eval --model <loc> --id <loc> --ood <name>=<loc> [--ood ...] [--json <file>] [--limit N]
  The paper's protocol: scans an ID test set and each OOD set through the pipeline and reports
  AUROC, FPR at 95% TPR, AUPR-in and AUPR-out for every score type (DLSR's and the Mahalanobis and
  kNN baselines), as a table and as JSON.
  --limit N       at most N images per set (an evenly spread, deterministic subset)
  --work <loc>    where the per-set scans are written (default <model>/.eval)
  --html <file>   also write an HTML page with the table and ROC curves (primary score)
  --shard-size N, --workers N as for scan; --in-process runs everything in this process`;

interface SetArg {
  readonly name: string;
  readonly uri: string;
  readonly loc: Location;
}

export async function evalCommand(argv: readonly string[]): Promise<void> {
  const v = parse(argv, {
    model: { type: 'string' }, id: { type: 'string' }, ood: { type: 'string', multiple: true }, json: { type: 'string' }, html: { type: 'string' }, limit: { type: 'string' },
    work: { type: 'string' }, 'shard-size': { type: 'string' }, workers: { type: 'string' }, 'in-process': { type: 'boolean' }, ...BACKEND_OPTION,
  });
  const env = parseEnv(process.env);
  const modelUri = absolute(required(v, 'model'));
  const idUri = absolute(required(v, 'id'));
  const oodArgs = (v['ood'] as string[] | undefined) ?? [];
  if (oodArgs.length === 0) throw new OodError('CONFIG_INVALID', 'missing --ood <name>=<dir> (at least one OOD set)');
  const sets: SetArg[] = [{ name: 'id', uri: idUri, loc: openLocation(idUri, env, true) }];
  for (const arg of oodArgs) {
    const eq = arg.indexOf('=');
    if (eq <= 0 || eq === arg.length - 1) throw new OodError('CONFIG_INVALID', `invalid --ood: expected <name>=<dir>, got ${JSON.stringify(arg)}`);
    const uri = absolute(arg.slice(eq + 1));
    sets.push({ name: arg.slice(0, eq), uri, loc: openLocation(uri, env, true) });
  }
  if (new Set(sets.map((s) => s.name)).size !== sets.length) throw new OodError('CONFIG_INVALID', 'invalid --ood: set names must be unique and not "id"');
  const limit = int(v, 'limit', 1);
  const scored = v['in-process'] === true ? await evalInProcess(v, env, modelUri, sets, limit) : await evalThroughPipeline(v, env, modelUri, sets, limit);
  const [id, ...oods] = scored;
  const report: EvalReport = evaluateScores(id!, Object.fromEntries(oods.map((s, i) => [sets[i + 1]!.name, s])));
  process.stdout.write(formatEvalTable(report));
  const jsonPath = str(v, 'json');
  if (jsonPath !== undefined) {
    await writeFile(jsonPath, JSON.stringify(report, null, 2) + '\n');
    process.stderr.write(`wrote ${jsonPath}\n`);
  }
  const htmlPath = str(v, 'html');
  if (htmlPath !== undefined) {
    const model = openLocation(modelUri, env, true);
    const primary = (await readModelJson(model.store, model.prefix)).config.scoring.primary;
    const curves = oods.map((s, i) => ({ name: sets[i + 1]!.name, ...rocCurve(id!.table.scores[primary], s.table.scores[primary]) }));
    await writeFile(htmlPath, renderEvalHtml(report, modelUri, primary, rocSvg(curves, 320)));
    process.stderr.write(`wrote ${htmlPath}\n`);
  }
}

async function evalThroughPipeline(v: Values, env: EnvConfig, modelUri: string, sets: readonly SetArg[], limit: number | undefined): Promise<EvalSet[]> {
  const model = openLocation(modelUri, env, true);
  const { encoder, identity } = await modelIdentity(model);
  const workRoot = absolute(str(v, 'work') ?? joinUri(modelUri, '.eval'));
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  const workers = int(v, 'workers', 1, 256);
  const backend = str(v, 'backend');
  const session = await openPipeline(env, { needs: ['extract', 'score', 'report'], log, ...(workers !== undefined ? { workers } : {}), ...(backend !== undefined ? { backend } : {}) });
  const out: EvalSet[] = [];
  try {
    for (const set of sets) {
      const outUri = joinUri(workRoot, `${set.name}-${stableHash(set.uri, limit ?? 'all').slice(0, 8)}`);
      const run = await enqueueScan(session, {
        input: set.loc,
        model: modelUri,
        out: outUri,
        encoder,
        modelIdentity: identity,
        shardSize: int(v, 'shard-size', 1, 1_000_000) ?? 1000,
        ...(limit !== undefined ? { limit } : {}),
        incremental: false,
        recordState: false,
        openWork: (uri) => openLocation(uri, env),
      });
      log(`[${set.name}] run ${run.runId}: ${run.images} images in ${run.shards} shards`);
      await followRun(session, run);
      const o = openLocation(outUri, env);
      const summary = await getJson<RunSummary>(o.store, joinKey(o.prefix, 'summary.json'));
      const table = await readScoreTable(o.store, joinKey(o.prefix, 'scores.parquet'));
      out.push({
        table,
        failed: summary.input.failed,
        extractSeconds: summary.input.images / Math.max(summary.throughput.extractImgPerS, 1e-9),
        scoreSeconds: summary.input.scored / Math.max(summary.throughput.scoreImgPerS, 1e-9),
      });
    }
  } finally {
    await session.close();
  }
  return out;
}

async function evalInProcess(v: Values, env: EnvConfig, modelUri: string, sets: readonly SetArg[], limit: number | undefined): Promise<EvalSet[]> {
  const modelLoc = openLocation(modelUri, env, true);
  const backend = await initBackend(backendChoice(v));
  const ctx = cliContext(backend, env);
  const model = await openModel(modelLoc.store, modelLoc.prefix);
  try {
    const encoder = await encoderForModel(model, ctx);
    try {
      const out: EvalSet[] = [];
      for (const set of sets) {
        const listing = await listImages(set.loc.store, set.loc.prefix);
        if (listing.images.length === 0) throw new OodError('NOT_FOUND', `no images under ${set.uri} for set ${set.name}`);
        const keys = spreadSample(listing.images.map((o) => o.key), limit);
        const s = await extractAndScore(model, encoder, set.loc.store, keys, ctx, set.name);
        out.push({ table: s.table, failed: s.features.failures.length, extractSeconds: s.extractSeconds, scoreSeconds: s.scoreSeconds });
      }
      return out;
    } finally {
      encoder.dispose();
    }
  } finally {
    disposeModel(model);
  }
}
