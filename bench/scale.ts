/**
 * bench:scale: a scan of 100,000 and of 1,000,000 objects through the real planner, Redis queues,
 * worker processes and report job, with memory measured per process.
 *
 * The lake is a local folder of tiny generated PNGs (8 x 8, 256 distinct images; every object is a
 * real image that is decoded, encoded and scored), and the model uses a tiny plugged-in encoder (two
 * convolutions at 32 x 32), so a million objects run on two cores in minutes: the benchmark measures
 * the pipeline (listing, shards, queues, merges, report), not MobileNetV2 (bench:speed does).
 *
 * Per size:
 *   1. planning: the product's planner and queue driver, in a process of their own, with no worker
 *      serving the queues: when the first group was enqueued, listing-to-last-enqueue rate, the
 *      planner's peak RSS, and Redis memory per pending shard (every job of the run waiting: the
 *      summed MEMORY USAGE of the run's keys, its event streams included), with the number of Redis
 *      keys per shard (no per-image keys).
 *   2. processing: two workers for extract, score and group jobs, one for report jobs (so the report
 *      job's sandboxed child is known): wall time per stage from the jobs' own timestamps, peak RSS
 *      of every worker parent and sandboxed child, the largest size of the run's work area (it is
 *      removed when the run completes).
 * Then the growth per object of every peak RSS between the two sizes. Peak RSS includes garbage not
 * yet collected; the planner also reports the heap it still uses after a forced collection at the
 * end (what it retains).
 *
 * --plan-only sizes (default 10,000,000) are planned and enqueued only, from a synthetic store that
 * generates the listing (bench/lib/synthetic-store.ts): no folder here holds ten million files, and
 * processing them would take hours; planning, Redis and the planner's memory are what grow with it.
 *
 * Options: --sizes 100000,1000000   --plan-only 10000000   --shard-size 1000   --workers 2
 * Writes bench/out/scale.json and bench/results/scale.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { QUEUES, finalJobOf, type QueueKind } from '../src/shared/queue/contract.js';
import { startWorker, type WorkerProcess } from '../support/services.js';
import { CACHE, REPO } from './lib/data.js';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '100000,1000000' }, 'plan-only': { type: 'string', default: '10000000' }, 'shard-size': { type: 'string', default: '1000' }, workers: { type: 'string', default: '2' } } });
const sizes = values.sizes.split(',').map(Number);
const planOnly = values['plan-only'] === '' ? [] : values['plan-only'].split(',').map(Number);
const shardSize = values['shard-size'];
const workerCount = Number(values.workers);
const REDIS = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const ROOT = path.join(CACHE, 'scale');

/** A folder of `n` tiny PNGs in sub-folders of 1,000 (made once, kept in the bench cache). */
async function lake(n: number): Promise<string> {
  const dir = path.join(ROOT, `lake-${n}`);
  if (existsSync(`${dir}.complete`)) return dir;
  console.log(`generating ${n} images in ${dir}...`);
  const pngs: Buffer[] = [];
  for (let i = 0; i < 256; i++) {
    const px = Buffer.alloc(8 * 8 * 3);
    for (let j = 0; j < px.length; j++) px[j] = (i * 37 + j * (i % 7 + 1) * 11) % 256;
    pngs.push(await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer());
  }
  for (let i = 0; i < n; i++) {
    const sub = path.join(dir, `d${String(Math.floor(i / 1000)).padStart(5, '0')}`);
    if (i % 1000 === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `i${String(i).padStart(7, '0')}.png`), pngs[(i * 131) % 256]!);
  }
  writeFileSync(`${dir}.complete`, '');
  return dir;
}

/** The tiny encoder (a tfjs LayersModel folder) and a model fitted with it on 2,000 of the images. */
async function model(): Promise<string> {
  const dir = path.join(ROOT, 'model');
  if (existsSync(path.join(dir, 'model.json'))) return dir;
  const encoder = path.join(ROOT, 'encoder');
  mkdirSync(encoder, { recursive: true });
  await tf.setBackend('cpu');
  const input = tf.input({ shape: [32, 32, 3] });
  const a = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'stage_a' }).apply(input) as tf.SymbolicTensor;
  const b = tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'stage_b' }).apply(a) as tf.SymbolicTensor;
  await tf.model({ inputs: input, outputs: b }).save(
    tf.io.withSaveHandler(async (art) => {
      writeFileSync(path.join(encoder, 'weights.bin'), new Uint8Array(art.weightData as ArrayBuffer));
      writeFileSync(path.join(encoder, 'model.json'), JSON.stringify({ modelTopology: art.modelTopology, format: art.format, weightsManifest: [{ paths: ['weights.bin'], weights: art.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const id = path.join(await lake(100_000), 'd00000');
  await node([path.join(REPO, 'src/cli/entry.ts'), 'fit', '--in-process', '--id', id, '--model', dir, '--encoder', 'layers', '--encoder-uri', encoder, '--taps', 'stage_a,stage_b', '--input-size', '32', '--epochs', '3', '--width', '64', '--depth', '1']);
  return dir;
}

/** Runs `node --import tsx <args>` (a script or the CLI); its stdout lines go to `out`. */
function node(args: string[], env: Record<string, string> = {}, out?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${args.join(' ')} exited with ${code}`));
      for (const line of text.trim().split('\n')) out?.(line);
      resolve();
    });
  });
}

/** Peak RSS (MB) of each process of a tree, sampled once a second while `until` is pending. */
function sampleTree(roots: () => number[], until: Promise<unknown>): Promise<Map<number, { hwm: number; cmd: string; parent: number }>> {
  const seen = new Map<number, { hwm: number; cmd: string; parent: number }>();
  const once = (): void => {
    const byParent = new Map<number, number[]>();
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        byParent.set(ppid, [...(byParent.get(ppid) ?? []), Number(d)]);
      } catch {
        /* gone */
      }
    }
    const stack = roots().map((r) => [r, 0] as [number, number]);
    while (stack.length > 0) {
      const [pid, parent] = stack.pop()!;
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
        const prev = seen.get(pid);
        seen.set(pid, { hwm: Math.max(hwm, prev?.hwm ?? 0), cmd, parent });
      } catch {
        /* gone */
      }
      for (const c of byParent.get(pid) ?? []) stack.push([c, pid]);
    }
  };
  return new Promise((resolve) => {
    const t = setInterval(once, 1000);
    void until.finally(() => {
      once();
      clearInterval(t);
      resolve(seen);
    });
  });
}

function duBytes(dir: string): number {
  let total = 0;
  const walk = (d: string): void => {
    try {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else total += statSync(p).size;
      }
    } catch {
      // Removed meanwhile (the run completed).
    }
  };
  walk(dir);
  return total;
}

/** The keys of a prefix and their summed MEMORY USAGE (exact per key, unlike used_memory deltas). */
async function keyMemory(redis: Redis, pattern: string): Promise<{ keys: number; bytes: number }> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
    cursor = next;
    keys += batch.length;
    const p = redis.pipeline();
    for (const k of batch) p.call('MEMORY', 'USAGE', k);
    for (const [, v] of (await p.exec()) ?? []) bytes += Number(v ?? 0);
  } while (cursor !== '0');
  return { keys, bytes };
}

interface SizeResult {
  readonly objects: number;
  readonly shards: number;
  readonly groups: number;
  readonly planning: { firstGroupSeconds: number; seconds: number; objectsPerSecond: number; peakRssMB: number; heapAfterMB: number; largestShard: number };
  readonly redis: { bytesPerPendingShard: number; keysPerShard: number };
  readonly stages: Record<string, number>;
  readonly totalSeconds: number;
  readonly peakRssMB: { workerParent: number; processorChild: number; reportChild: number };
  readonly workBytes: number;
}

/** Wall time of a stage: first start to last finish over the run's jobs of a queue. */
async function stageSeconds(q: Queue, runId: string): Promise<number> {
  let first = Infinity;
  let last = 0;
  for (let start = 0; ; start += 1000) {
    const jobs = await q.getJobs(['completed'], start, start + 999);
    for (const j of jobs) {
      if (!j.id?.startsWith(`${runId}.`) || j.processedOn === undefined || j.finishedOn === undefined) continue;
      first = Math.min(first, j.processedOn);
      last = Math.max(last, j.finishedOn);
    }
    if (jobs.length < 1000) break;
  }
  return Number.isFinite(first) ? (last - first) / 1000 : 0;
}

interface Planned {
  runId: string;
  listed: number;
  images: number;
  shards: number;
  groups: number;
  firstGroupSeconds: number;
  seconds: number;
  peakRssMB: number;
  heapAfterMB: number;
  largestShard: number;
}

/** Plans and enqueues a scan of `input` in its own process (no worker serves the queues yet). */
async function plan(modelDir: string, input: string, out: string, prefix: string, env: Record<string, string>): Promise<{ planned: Planned; redisBytes: number; keys: number }> {
  const redis = new Redis(REDIS);
  try {
    let planned: Planned | undefined;
    await node(['--expose-gc', path.join(REPO, 'bench/lib/scale-plan.ts'), modelDir, input, out, shardSize, prefix], env, (l) => (planned = JSON.parse(l) as Planned));
    const { keys, bytes } = await keyMemory(redis, `${prefix}:*`);
    return { planned: planned!, redisBytes: bytes, keys };
  } finally {
    redis.disconnect();
  }
}

/** Removes a benchmark run's keys from Redis. */
async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 10_000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}

async function measure(n: number, modelDir: string): Promise<SizeResult> {
  const input = await lake(n);
  const prefix = `scale${Date.now().toString(36)}`;
  const out = path.join(ROOT, 'out', `${n}-${prefix}`);
  const env = { REDIS_URL: REDIS, OOD_QUEUE_PREFIX: prefix, OOD_WORKER_ROOTS: ROOT };
  console.log(`[${n}] planning and enqueuing (no workers yet)...`);
  const { planned: p, redisBytes, keys } = await plan(modelDir, input, out, prefix, env);
  console.log(`[${n}] ${p.listed} listed into ${p.shards} shards, ${p.groups} groups in ${p.seconds.toFixed(1)} s; Redis +${(redisBytes / 1e6).toFixed(1)} MB, ${keys} keys`);
  console.log(`[${n}] processing with ${workerCount} workers + 1 report worker...`);
  const started = performance.now();
  const workers: WorkerProcess[] = [];
  for (let i = 0; i < workerCount; i++) workers.push(startWorker(env, ['--queues', 'extract,score,group']));
  const reporter = startWorker(env, ['--queues', 'report']);
  const final = finalJobOf('scan', p.runId);
  const conn = new Redis(REDIS, { maxRetriesPerRequest: null });
  const queues = Object.fromEntries((['extract', 'score', 'group', 'report'] as QueueKind[]).map((k) => [k, new Queue(QUEUES[k], { connection: conn, prefix })])) as Record<QueueKind, Queue>;
  // The work area is removed when the run completes: its size is sampled while the run goes.
  let workBytes = 0;
  const done = (async () => {
    for (let i = 0; ; i++) {
      const state = await queues.report.getJobState(final.id);
      if (i % 10 === 0 || state === 'active') workBytes = Math.max(workBytes, duBytes(path.join(out, '.work', p.runId)));
      if (state === 'completed') return;
      if (state === 'failed') throw new Error(`run ${p.runId} failed: ${(await Job.fromId(queues.report, final.id))?.failedReason}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const samples = sampleTree(() => [...workers, reporter].map((w) => w.pid), done);
  await done;
  const totalSeconds = (performance.now() - started) / 1000;
  const rss = await samples;
  const stages: Record<string, number> = {};
  for (const k of ['extract', 'score', 'group', 'report'] as const) stages[k] = await stageSeconds(queues[k], p.runId);
  const parents = [...rss.entries()].filter(([pid]) => [...workers, reporter].some((w) => w.pid === pid));
  const children = [...rss.entries()].filter(([, v]) => v.parent !== 0 && workers.some((w) => w.pid === v.parent));
  const reportChildren = [...rss.entries()].filter(([, v]) => v.parent === reporter.pid);
  const max = (xs: [number, { hwm: number }][]): number => Math.max(0, ...xs.map(([, v]) => v.hwm));
  await Promise.all([...workers, reporter].map((w) => w.stop()));
  for (const q of Object.values(queues)) await q.close();
  conn.disconnect();
  await dropPrefix(prefix);
  const result: SizeResult = {
    objects: n,
    shards: p.shards,
    groups: p.groups,
    planning: { firstGroupSeconds: p.firstGroupSeconds, seconds: p.seconds, objectsPerSecond: p.listed / p.seconds, peakRssMB: p.peakRssMB, heapAfterMB: p.heapAfterMB, largestShard: p.largestShard },
    redis: { bytesPerPendingShard: redisBytes / p.shards, keysPerShard: keys / p.shards },
    stages,
    totalSeconds,
    peakRssMB: { workerParent: max(parents), processorChild: max(children), reportChild: max(reportChildren) },
    workBytes,
  };
  console.log(`[${n}] done in ${totalSeconds.toFixed(0)} s: ${JSON.stringify(result)}`);
  return result;
}

const modelDir = await model();
const results: SizeResult[] = [];
for (const n of sizes) results.push(await measure(n, modelDir));
const plannedOnly: (Planned & { redisBytesPerShard: number; keysPerShard: number })[] = [];
for (const n of planOnly) {
  const prefix = `scale${Date.now().toString(36)}`;
  console.log(`[${n}] planning only, from a synthetic listing...`);
  const { planned, redisBytes, keys } = await plan(modelDir, `synthetic:${n}`, path.join(ROOT, 'out', `${n}-${prefix}`), prefix, { REDIS_URL: REDIS, OOD_QUEUE_PREFIX: prefix });
  await dropPrefix(prefix);
  plannedOnly.push({ ...planned, redisBytesPerShard: redisBytes / planned.shards, keysPerShard: keys / planned.shards });
  console.log(`[${n}] ${JSON.stringify(plannedOnly[plannedOnly.length - 1])}`);
}

const f = (x: number, d = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const rows = [
  ['objects', ...results.map((r) => f(r.objects))],
  ['shards / groups', ...results.map((r) => `${f(r.shards)} / ${f(r.groups)}`)],
  ['first group enqueued after (s)', ...results.map((r) => f(r.planning.firstGroupSeconds, 1))],
  ['listing to last enqueue (objects/s)', ...results.map((r) => f(r.planning.objectsPerSecond))],
  ['planner peak RSS (MB)', ...results.map((r) => f(r.planning.peakRssMB))],
  ['planner heap after a forced GC (MB)', ...results.map((r) => f(r.planning.heapAfterMB, 1))],
  ['Redis per pending shard (bytes)', ...results.map((r) => f(r.redis.bytesPerPendingShard))],
  ['Redis keys per shard', ...results.map((r) => f(r.redis.keysPerShard, 1))],
  ['extract / score / group stage (s)', ...results.map((r) => `${f(r.stages['extract']!)} / ${f(r.stages['score']!)} / ${f(r.stages['group']!)}`)],
  ['report job (s)', ...results.map((r) => f(r.stages['report']!, 1))],
  ['total after planning (s)', ...results.map((r) => f(r.totalSeconds))],
  ['worker parent peak RSS (MB)', ...results.map((r) => f(r.peakRssMB.workerParent))],
  ['extract/score/group child peak RSS (MB)', ...results.map((r) => f(r.peakRssMB.processorChild))],
  ['report job child peak RSS (MB)', ...results.map((r) => f(r.peakRssMB.reportChild))],
  ['work area, largest seen (MB)', ...results.map((r) => f(r.workBytes / 1e6, 1))],
  ['largest shard (images)', ...results.map((r) => f(r.planning.largestShard))],
];
let md = `# bench:scale\n\nMeasured ${new Date().toISOString().slice(0, 10)} on this machine (${workerCount} workers, shard size ${shardSize}); tiny images and encoder (see bench/scale.ts).\n\n| | ${results.map((r) => f(r.objects)).join(' | ')} |\n|---|${results.map(() => '---:').join('|')}|\n`;
for (const [label, ...cells] of rows.slice(1)) md += `| ${label} | ${cells.join(' | ')} |\n`;
if (results.length >= 2) {
  const [a, b] = [results[0]!, results[results.length - 1]!];
  const per = (x: number, y: number): string => f(((y - x) * 1024 * 1024) / (b.objects - a.objects), 1);
  md += `\nGrowth per object from ${f(a.objects)} to ${f(b.objects)} objects (bytes): planner ${per(a.planning.peakRssMB, b.planning.peakRssMB)}, worker parent ${per(a.peakRssMB.workerParent, b.peakRssMB.workerParent)}, processor child ${per(a.peakRssMB.processorChild, b.peakRssMB.processorChild)}, report child ${per(a.peakRssMB.reportChild, b.peakRssMB.reportChild)}.\n`;
}
if (plannedOnly.length > 0) {
  md += `\nPlanning only, from a synthetic listing (no files; nothing processed):\n\n| objects | shards / groups | first group (s) | objects/s | planner peak RSS (MB) | heap after GC (MB) | Redis per pending shard (bytes) | keys per shard |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n`;
  for (const p of plannedOnly) md += `| ${f(p.listed)} | ${f(p.shards)} / ${f(p.groups)} | ${f(p.firstGroupSeconds, 1)} | ${f(p.listed / p.seconds)} | ${f(p.peakRssMB)} | ${f(p.heapAfterMB, 1)} | ${f(p.redisBytesPerShard)} | ${f(p.keysPerShard, 1)} |\n`;
}
console.log(`\n${md}`);
mkdirSync(path.join(REPO, 'bench/out'), { recursive: true });
mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/out/scale.json'), JSON.stringify({ results, plannedOnly }, null, 2));
writeFileSync(path.join(REPO, 'bench/results/scale.md'), md);
