import path from 'node:path';
import { parseEnv } from '../../shared/config/env.js';
import { modelIdentity } from '../../producers/model-identity.js';
import { joinKey } from '../../shared/storage/object-store.js';
import { openLocation } from '../../shared/storage/open.js';
import type { ReportResult } from '../../shared/queue/contract.js';
import type { RunSummary } from '../../shared/app/outputs.js';
import { getJson } from '../../shared/storage/object-store.js';
import { enqueueScan } from '../../producers/runs.js';
import { BACKEND_OPTION, int, parse, required, str } from '../options.js';
import { followRun, openPipeline } from '../pipeline.js';
import { scoreInProcess } from './score.js';

export const SCAN_USAGE = `ood-audit scan --model <loc> --input <loc> --out <loc> [--shard-size N] [--cache <loc>] [--workers N]
  Scores every image under --input through the queue pipeline (locations are folders or s3://
  URIs): extract and score jobs per shard, then a report job that writes scores.parquet,
  scores.csv, failures.csv and summary.json under --out. "ood-audit score" is the same command.
  --shard-size N   images per shard (default 1000)
  --cache <loc>    feature cache (default <model>/cache); an unchanged shard is never re-encoded
  --workers N      local worker processes to start if none serves the queues (default: one per core)
  --full           scan every image (default: only images new or changed since the last completed
                   scan of this prefix with this model; the report says how many were skipped)
  --partition-depth N  report partitions: the first N path segments below the input (default 1)
  --top-k N        images in the report's most-OOD and most-typical galleries (default 24)
  --in-process     score in this process, without Redis and workers
  Redis: REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server.`;

/** Local folders become absolute paths so workers in other working directories find them. */
export function absolute(uri: string): string {
  return uri.startsWith('s3://') || uri.startsWith('file://') ? uri : path.resolve(uri);
}

export async function scanCommand(argv: readonly string[]): Promise<void> {
  const v = parse(argv, {
    model: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' }, 'shard-size': { type: 'string' }, cache: { type: 'string' }, workers: { type: 'string' },
    'in-process': { type: 'boolean' }, full: { type: 'boolean' }, 'partition-depth': { type: 'string' }, 'top-k': { type: 'string' }, ...BACKEND_OPTION,
  });
  if (v['in-process'] === true) return scoreInProcess(v);
  const env = parseEnv(process.env);
  const modelUri = absolute(required(v, 'model'));
  const inputUri = absolute(required(v, 'input'));
  const outUri = absolute(required(v, 'out'));
  const cacheArg = str(v, 'cache');
  const model = openLocation(modelUri, env, true);
  const input = openLocation(inputUri, env, true);
  const { encoder, identity } = await modelIdentity(model);
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  const workers = int(v, 'workers', 1, 256);
  const backend = str(v, 'backend');
  const session = await openPipeline(env, { needs: ['extract', 'score', 'report'], log, ...(workers !== undefined ? { workers } : {}), ...(backend !== undefined ? { backend } : {}) });
  try {
    const run = await enqueueScan(session, {
      input,
      model: modelUri,
      out: outUri,
      ...(cacheArg !== undefined ? { cache: absolute(cacheArg) } : {}),
      encoder,
      modelIdentity: identity,
      shardSize: int(v, 'shard-size', 1, 1_000_000) ?? 1000,
      incremental: v['full'] !== true,
      recordState: true,
      partitionDepth: int(v, 'partition-depth', 1, 16) ?? 1,
      topK: int(v, 'top-k', 0, 500) ?? 24,
      openWork: (uri) => openLocation(uri, env),
    });
    const unchanged = run.skippedUnchanged !== undefined && run.skippedUnchanged > 0 ? `, ${run.skippedUnchanged} unchanged since the previous scan skipped (--full rescans them)` : '';
    log(`${run.created ? 'queued' : 'already queued or done:'} run ${run.runId}: ${run.images} images in ${run.shards} shards (${run.skippedNonImages} non-image files skipped${unchanged})`);
    const result = (await followRun(session, run)) as ReportResult;
    const out = openLocation(outUri, env);
    const summary = await getJson<RunSummary>(out.store, joinKey(out.prefix, 'summary.json'));
    process.stdout.write(
      `${result.scored} scored, ${result.failed} failed, ${result.flagged} flagged ` +
        `(${(summary.flaggedFraction * 100).toFixed(1)}% vs ${(summary.expectedFraction * 100).toFixed(0)}% expected in-distribution)` +
        `${result.missingShards.length > 0 ? `; shards not scored: ${result.missingShards.join(', ')}` : ''}; outputs in ${outUri}\n`,
    );
  } finally {
    await session.close();
  }
}
