// The planning process of bench:scale: plans and enqueues one scan through the product's own planner
// and queue driver (no workers serve the queues yet, so every job stays pending), and prints one JSON
// line: when the first group was enqueued, when the last was, the run's size, this process's peak RSS.
import { readFileSync } from 'node:fs';
import { parseEnv } from '../../src/shared/config/env.js';
import { redisConnection } from '../../src/shared/queue/redis.js';
import { openLocation } from '../../src/shared/storage/open.js';
import { planScan } from '../../src/producers/plan.js';
import { startRun } from '../../src/producers/enqueue.js';
import { SyntheticStore } from './synthetic-store.js';

const [model, input, out, shardSize, prefix] = process.argv.slice(2) as [string, string, string, string, string];
const env = parseEnv(process.env);
// "synthetic:N" lists N generated objects (a planning-only run of a size no folder here can hold).
const synthetic = /^synthetic:(\d+)$/.exec(input);
const open = (uri: string, mustExist = false): ReturnType<typeof openLocation> =>
  synthetic !== null && uri === input ? { store: new SyntheticStore(Number(synthetic[1]), new Uint8Array(70)), prefix: '', uri } : openLocation(uri, env, mustExist);
const started = performance.now();
const connection = redisConnection(env.redis.url);
// A cache of its own: every shard is really extracted.
const plan = await planScan({ input: open(input, true), model, out, cache: `${out}/cache`, shardSize: Number(shardSize), incremental: false, recordState: true, open });
const run = await startRun({ connection, prefix }, plan);
let firstGroup: number | undefined;
let largestShard = 0;
const record = await run.list({
  onGroup: (g) => {
    firstGroup ??= performance.now();
    for (const s of g.shards) largestShard = Math.max(largestShard, s.shard.count);
  },
});
const ended = performance.now();
const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
// What the planner still holds once it is done (with --expose-gc): peak RSS includes garbage not yet collected.
(globalThis as { gc?: () => void }).gc?.();
const heapAfterMB = process.memoryUsage().heapUsed / 2 ** 20;
await connection.quit();
process.stdout.write(
  JSON.stringify({
    runId: run.runId,
    listed: record?.listed ?? 0,
    images: record?.images ?? 0,
    shards: record?.shards ?? 0,
    groups: record?.groups.length ?? 0,
    firstGroupSeconds: ((firstGroup ?? ended) - started) / 1000,
    seconds: (ended - started) / 1000,
    peakRssMB: hwm / 1024,
    heapAfterMB,
    largestShard,
  }) + '\n',
);
