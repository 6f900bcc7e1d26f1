import type { EnvConfig } from '../../shared/config/env.js';
import { openLocation } from '../../shared/storage/open.js';
import { assertWritable, planScan } from '../../producers/plan.js';
import { SKIP_REASONS } from '../../shared/outputs/accounting.js';
import { describeSkipped } from '../../shared/queue/contract.js';
import { absolute, backendChoice, BACKEND_OPTION, int, parse, required, SCAN_OPTIONS, scanSettings } from '../options.js';
import { openRunner } from '../run.js';

export const SCAN_USAGE = `ood-audit scan --model <loc> --input <loc> --out <loc> [--shard-size N] [--cache <loc>] [--workers N]
  Scores every image under --input through the queue pipeline (locations are folders or s3://
  URIs): the listing is cut into shards as it comes (extract and score jobs per shard, a merge job
  per group of shards), then a report job writes scores/, failures/, skipped/ (part files; also
  scores.parquet, scores.csv, failures.csv and skipped.csv up to 100,000 rows), summary.json and
  report.html/json/md under --out. "ood-audit score" is the same command.
  --shard-size N   images per shard, on average (default 1000; cut where the keys say, at most twice)
  --cache <loc>    feature cache (default <model>/cache); an unchanged shard is never re-encoded
  --workers N      local worker processes to start if none serves the queues (default: one per core)
  --full           scan every image (default: only images new or changed since the last completed
                   scan of this prefix with this model; the report says how many were skipped)
  --partition-depth N  report partitions: the first N path segments below the input (default 1)
  --top-k N        images in the report's most-OOD and most-typical galleries (default 24)
  --max-bytes N    largest image file read, in bytes (default 268435456 = 256 MiB); a larger file is
                   a failure in failures.csv, never read
  --in-process     run every job in this process, without Redis and workers (same outputs)
  --backend B      tensor backend: auto (default) | tensorflow-gpu | tensorflow | wasm | cpu
  Redis: REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server.`;

export async function scanCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const v = parse(argv, { model: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' }, workers: { type: 'string' }, 'in-process': { type: 'boolean' }, ...SCAN_OPTIONS, ...BACKEND_OPTION });
  const modelUri = absolute(required(v, 'model'));
  const inputUri = absolute(required(v, 'input'));
  const outUri = absolute(required(v, 'out'));
  const settings = scanSettings(v);
  const workers = int(v, 'workers', 1, 256);
  const backend = backendChoice(v);
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
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
    maxBytes: settings.maxBytes,
    open,
  });
  await assertWritable(open(outUri));
  const roots = [inputUri, modelUri, outUri, ...(settings.cache !== undefined ? [settings.cache] : [])];
  const runner = await openRunner(env, { inProcess: v['in-process'] === true, needs: ['extract', 'score', 'group', 'report'], roots, log, ...(workers !== undefined ? { workers } : {}), ...(backend !== undefined ? { backend } : {}) });
  try {
    const result = await runner.scan(plan, {
      what: `${inputUri} -> ${outUri}${settings.full ? ' (full)' : ''}`,
      listed: (r) => {
        const full = r.skippedByReason[SKIP_REASONS.unchanged] !== undefined ? '; --full rescans unchanged images' : '';
        return `${r.listed} entries: ${r.images} images in ${r.shards} shards (skipped: ${describeSkipped(r.skippedByReason)}${full})`;
      },
    });
    process.stdout.write(
      `${result.scored} scored, ${result.failed} failed, ${result.flagged} flagged ` +
        `(${(result.flaggedFraction * 100).toFixed(1)}% vs ${(result.expectedFraction * 100).toFixed(0)}% expected in-distribution)` +
        `${result.missingShardCount > 0 ? `; ${result.missingShardCount} shards not scored (${result.missingShards.join(', ')}${result.missingShardCount > result.missingShards.length ? ', ...' : ''})` : ''}; outputs in ${outUri}\n`,
    );
  } finally {
    await runner.close();
  }
}
