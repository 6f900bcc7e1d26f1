/**
 * bench:pipeline: CIFAR-10 test + Fashion-MNIST test (20,000 images) scanned through a real S3
 * server (s3rver) and Redis with 1 and with 2 worker processes, end to end (listing to merged
 * report), against the in-process core on the same S3 input. Reports images/s, the speed-up of the
 * second process, the pipeline's overhead, peak RSS per worker (its process tree), and Redis memory
 * per 10,000 images. Writes the table to bench/results/pipeline.md (quoted by the README) and the raw
 * figures to bench/out/pipeline.json.
 *
 * Options: --limit N (images per set, default all 10,000), --epochs N (the small model's training).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { datasetDir, listKeys, REPO } from './lib/data.js';
import { startS3rver, startWorker, upload, type WorkerProcess } from '../support/services.js';

const { values } = parseArgs({ options: { limit: { type: 'string' }, epochs: { type: 'string', default: '5' } } });
const limit = values.limit !== undefined ? Number(values.limit) : undefined;
const REDIS = 'redis://127.0.0.1:6379';
const prefix = `bench${Date.now().toString(36)}`;

function cli(args: string[], env: Record<string, string>): Promise<{ seconds: number; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO, 'bin/ood-audit.js'), ...args], { env: { ...process.env, OOD_QUEUE_PREFIX: prefix, ...env }, stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      process.stderr.write(d);
    });
    child.on('close', (code) => (code === 0 ? resolve({ seconds: (performance.now() - started) / 1000, stderr }) : reject(new Error(`ood-audit ${args[0]} exited with ${code}`))));
  });
}

/** Resident memory (MB) of a process and all its descendants: the total and the largest process. */
function treeRssMB(pid: number): { total: number; largest: number } {
  try {
    const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,rss='], { encoding: 'utf8' });
    const rows = out.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number) as [number, number, number]);
    const children = new Map<number, number[]>();
    for (const [p, pp] of rows) children.set(pp, [...(children.get(pp) ?? []), p]);
    const rss = new Map(rows.map(([p, , r]) => [p, r]));
    let total = 0;
    let largest = 0;
    const stack = [pid];
    while (stack.length > 0) {
      const p = stack.pop()!;
      total += rss.get(p) ?? 0;
      largest = Math.max(largest, rss.get(p) ?? 0);
      stack.push(...(children.get(p) ?? []));
    }
    return { total: total / 1024, largest: largest / 1024 };
  } catch {
    return { total: 0, largest: 0 };
  }
}

console.log('building (npm run build) so the CLI and workers run compiled code...');
execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
const s3 = await startS3rver('bench');
const env = { ...s3.env, REDIS_URL: REDIS };
const redis = new Redis(REDIS);
const result: Record<string, unknown> = { date: new Date().toISOString() };
let table = '';
try {
  let images = 0;
  const t0 = performance.now();
  for (const [set, name] of [['cifar10/test', 'cifar10-test'], ['fashion-mnist/test', 'fashion-mnist-test']] as const) {
    const dir = datasetDir(set);
    const keys = listKeys(dir);
    const chosen = limit !== undefined ? keys.filter((_, i) => i % Math.ceil(keys.length / limit) === 0).slice(0, limit) : keys;
    for (let i = 0; i < chosen.length; i += 64) {
      await Promise.all(chosen.slice(i, i + 64).map((k) => upload(s3, `lake/${name}/${k}`, readFileSync(path.join(dir, k)))));
    }
    images += chosen.length;
  }
  console.log(`uploaded ${images} images to s3rver in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  result['images'] = images;

  console.log('fitting a CPU-preset model on the demo sample (in-process)...');
  await cli(['fit', '--in-process', '--id', path.join(REPO, 'examples/demo/id'), '--model', 's3://bench/models/m', '--epochs', values.epochs!], env);

  const core = await cli(['scan', '--full', '--in-process', '--model', 's3://bench/models/m', '--input', 's3://bench/lake/', '--out', 's3://bench/reports/core'], env);
  result['inProcess'] = { seconds: core.seconds, imgPerS: images / core.seconds };
  console.log(`in-process core: ${core.seconds.toFixed(1)} s, ${(images / core.seconds).toFixed(1)} img/s`);

  const runs: Record<string, unknown>[] = [];
  for (const n of [1, 2]) {
    const workers: WorkerProcess[] = Array.from({ length: n }, () => startWorker({ ...env, OOD_QUEUE_PREFIX: prefix, OOD_WORKER_ROOTS: `s3://bench/,${REPO}` }));
    await Promise.all(workers.map((w) => w.ready()));
    const peaks = workers.map(() => 0);
    const peakProcess = workers.map(() => 0);
    const sampler = setInterval(
      () =>
        workers.forEach((w, i) => {
          const m = treeRssMB(w.pid);
          peaks[i] = Math.max(peaks[i]!, m.total);
          peakProcess[i] = Math.max(peakProcess[i]!, m.largest);
        }),
      1000,
    );
    // --full: scans are incremental by default and would skip the objects an earlier run scanned.
    const run = await cli(['scan', '--full', '--model', 's3://bench/models/m', '--input', 's3://bench/lake/', '--out', `s3://bench/reports/w${n}`, '--cache', `s3://bench/cache-w${n}`, '--shard-size', '500'], env);
    clearInterval(sampler);
    await Promise.all(workers.map((w) => w.stop()));
    const r = { workers: n, seconds: run.seconds, imgPerS: images / run.seconds, peakRssMBPerWorker: peaks, peakRssMBLargestProcess: peakProcess };
    runs.push(r);
    console.log(JSON.stringify(r));
  }
  result['pipeline'] = runs;
  // used_memory deltas are within Redis' own noise at this size: sum MEMORY USAGE over the run's keys.
  let bytes = 0;
  let keys = 0;
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const k of batch) {
      bytes += (await redis.memory('USAGE', k)) ?? 0;
      keys += 1;
    }
  } while (cursor !== '0');
  result['redisKeysMB'] = { keys, mb: bytes / 1024 / 1024, mbPer10kImagesScanned: (bytes / 1024 / 1024) * (10_000 / (images * runs.length)) };
  const one = runs[0] as { seconds: number };
  const two = runs[1] as { seconds: number };
  result['speedup2'] = one.seconds / two.seconds;
  result['overheadVsCore'] = one.seconds / core.seconds - 1;
  const lines = [
    `bench:pipeline, ${String(result['date']).slice(0, 10)}: ${images} images on s3rver`,
    '',
    '| setting | seconds | img/s | peak RSS per worker, all its processes (MB) | largest single process (MB) |',
    '|---|---|---|---|---|',
    `| in-process core | ${core.seconds.toFixed(1)} | ${(images / core.seconds).toFixed(1)} | | |`,
  ];
  for (const r of runs as { workers: number; seconds: number; imgPerS: number; peakRssMBPerWorker: number[]; peakRssMBLargestProcess: number[] }[]) {
    lines.push(`| pipeline, ${r.workers} worker${r.workers > 1 ? 's' : ''} | ${r.seconds.toFixed(1)} | ${r.imgPerS.toFixed(1)} | ${r.peakRssMBPerWorker.map((x) => x.toFixed(0)).join(', ')} | ${r.peakRssMBLargestProcess.map((x) => x.toFixed(0)).join(', ')} |`);
  }
  lines.push('', `Redis: ${keys} keys, ${(bytes / 1024 / 1024).toFixed(3)} MB for the fit and ${runs.length} pipeline scans of ${images} images (jobs kept as history): ${((bytes / 1024 / 1024) * (10_000 / (images * runs.length))).toFixed(3)} MB per 10,000 images scanned.`);
  lines.push(`Speed-up of the second worker: ${(result['speedup2'] as number).toFixed(2)}x; overhead of the 1-worker pipeline vs the in-process core: ${((result['overheadVsCore'] as number) * 100).toFixed(1)}%.`);
  table = lines.join('\n') + '\n';
  process.stdout.write(`\n${table}`);
} finally {
  redis.disconnect();
  await s3.stop();
}
mkdirSync(path.join(REPO, 'bench/out'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/out/pipeline.json'), JSON.stringify(result, null, 2) + '\n');
mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/results/pipeline.md'), table);
console.log('wrote bench/results/pipeline.md and bench/out/pipeline.json');
