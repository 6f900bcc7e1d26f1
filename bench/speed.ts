/**
 * bench:speed: throughput and memory on this machine, the encoder runtimes side by side.
 *   extract  CIFAR-10 test JPEGs -> default encoder features at 224 (read and decode included), per
 *            runtime and process x thread layout, with where each batch's time goes (read, decode +
 *            resize, encoder wait, encode; score from the score task) and the encoder alone
 *   score    the CPU-preset LFDN on 10,000 feature rows (DLSR scores, + LR, + baselines)
 *   train    CPU-preset epochs on 45,000 rows (the CIFAR-10 training set minus the 10% holdout)
 * Prints Markdown tables, writes them to bench/results/speed.md and the raw figures to
 * bench/out/speed.json. Options: --images N per process (default 1024), --epochs N (default 2),
 * --backend a,b (runtimes to compare, default wasm,onnx; e.g. onnx-cuda on a GPU host),
 * --threads a,b (onnxruntime intra-op threads of a single process, default 1,2), --skip-train,
 * --source local,s3 (s3: the same images uploaded to a local s3rver and read through the product's
 * object store, one process per core, to compare with the local folder), --decode thread,main
 * (where sharp decodes: the process's decode thread, the default, or the encoder's own thread).
 * The end-to-end target of issue 16 is 10x the PyTorch CPU reference of PLATFORM.md (MobileNetV2
 * features, 2 threads, 24 img/s at 224 px): 240 img/s.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { datasetDir, listKeys, REPO } from './lib/data.js';
import { startS3rver, upload } from '../support/services.js';
import { defaultConfig } from '../src/shared/dlsr/config.js';
import { parseBackendChoice } from '../src/shared/config/env.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '1024' },
    epochs: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'wasm,onnx' },
    threads: { type: 'string', default: '1,2' },
    'skip-train': { type: 'boolean', default: false },
    source: { type: 'string', default: 'local,s3' },
    decode: { type: 'string', default: 'thread' },
  },
});
const sources = values.source.split(',');
const decodeModes = values.decode.split(',').map((d) => {
  if (d !== 'thread' && d !== 'main') throw new Error(`--decode: expected thread or main, got ${d}`);
  return d;
});
const PYTORCH_REFERENCE = 24;
const nImages = Number(values.images);
const epochs = Number(values.epochs);
const backends = values.backend.split(',').map((b) => parseBackendChoice(b.trim()));
const threadCounts = values.threads.split(',').map(Number);

type Json = Record<string, unknown>;
let childEnv: NodeJS.ProcessEnv = process.env;
let jobs = 0;
function child(job: Json): Promise<Json> {
  // The job (thousands of keys) goes in a file, not on the command line: onnxruntime-node 1.30
  // crashes (SIGSEGV) creating a session in a process whose arguments exceed about 30 KB.
  const jobFile = path.join(REPO, 'bench/out', `speed-job-${process.pid}-${jobs++}.json`);
  mkdirSync(path.dirname(jobFile), { recursive: true });
  writeFileSync(jobFile, JSON.stringify(job));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/lib/speed-child.ts'), jobFile], { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      rmSync(jobFile, { force: true });
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop()!) as Json);
      else reject(new Error(`speed child exited with ${code ?? signal}`));
    });
  });
}
async function parallel(jobs: Json[]): Promise<Json[]> {
  return Promise.all(jobs.map(child));
}

const cores = cpus().length;
const dir = datasetDir('cifar10/test');
const keys = listKeys(dir);
const slice = (p: number, n: number): string[] => keys.filter((_, i) => i % n === p).slice(0, nImages);
const cfg = defaultConfig();
const result: Json = { date: new Date().toISOString(), cores, config: { lfdn: cfg.lfdn, encoder: cfg.encoder, trainBatch: cfg.train.batchSize, scoringBatch: cfg.scoring.batchSize, epochs: cfg.train.epochs } };
const f = (x: unknown, d = 1): string => (typeof x === 'number' ? x.toFixed(d) : String(x));

console.log('score: 10,000 rows per process');
const sc1 = await child({ task: 'score', rows: 10_000 });
const scN = await parallel(Array.from({ length: cores }, () => ({ task: 'score', rows: 10_000 })));
result['score'] = { oneProcess: sc1, perCore: scN };

// Layouts: each runtime in one process (onnxruntime at each thread count), then one process per core
// (onnxruntime at 1 thread each): 1 x 2 threads against 2 x 1 is the split the default rests on.
interface Layout { readonly backend: string; readonly processes: number; readonly threads?: number; readonly source: 'local' | 's3'; readonly decode: 'thread' | 'main' }
const layouts: Layout[] = [];
for (const decode of decodeModes) for (const b of backends) {
  const onnx = b === 'onnx' || b === 'onnx-cuda' || b === 'auto';
  if (sources.includes('local')) {
    for (const t of onnx ? threadCounts : [undefined]) layouts.push({ backend: b, processes: 1, source: 'local', decode, ...(t !== undefined ? { threads: t } : {}) });
    layouts.push({ backend: b, processes: cores, source: 'local', decode, ...(onnx ? { threads: 1 } : {}) });
  }
  if (sources.includes('s3')) layouts.push({ backend: b, processes: cores, source: 's3', decode, ...(onnx ? { threads: 1 } : {}) });
}
const extract: Json[] = [];
const s3 = layouts.some((l) => l.source === 's3') ? await startS3rver('bench') : undefined;
try {
  if (s3 !== undefined) {
    const all = [...new Set(Array.from({ length: cores }, (_, p) => slice(p, cores)).flat())];
    for (let i = 0; i < all.length; i += 64) await Promise.all(all.slice(i, i + 64).map((k) => upload(s3, `speed/${k}`, readFileSync(path.join(dir, k)))));
    console.log(`uploaded ${all.length} images to s3rver`);
    childEnv = { ...process.env, ...s3.env };
  }
  for (const l of layouts) {
    console.log(`extract: ${nImages} CIFAR-10 test images per process at ${cfg.encoder.inputSize}px from ${l.source}, ${l.backend}, ${l.processes} process(es)${l.threads !== undefined ? ` x ${l.threads} thread(s)` : ''}, decoding in the ${l.decode === 'thread' ? 'decode thread' : 'main thread'}`);
    const from = l.source === 's3' ? 's3://bench/speed/' : dir;
    const cpu0 = s3?.cpuSeconds() ?? 0;
    const t0 = performance.now();
    const runs = await parallel(Array.from({ length: l.processes }, (_, p) => ({ task: 'extract', backend: l.backend, decodeThread: l.decode === 'thread', ...(l.threads !== undefined ? { threads: l.threads } : {}), dir: from, keys: slice(p, l.processes) })));
    // The S3 server runs on the same cores: the share of them it took during this layout.
    const s3rverCoreShare = l.source === 's3' && s3 !== undefined ? (s3.cpuSeconds() - cpu0) / (((performance.now() - t0) / 1000) * cores) : undefined;
    extract.push({ ...l, runs, ...(s3rverCoreShare !== undefined ? { s3rverCoreShare } : {}) });
  }
} finally {
  await s3?.stop();
}
result['extract'] = extract;

const scoreAll = (sc1['imgPerS'] as Json)['allScores'] as number;
const lines = [
  `bench:speed, ${String(result['date']).slice(0, 10)}, ${cores} cores`,
  '',
  `Extraction at ${cfg.encoder.inputSize} px (CIFAR-10 test JPEGs from a local folder, read and decode included). Per batch of 32, milliseconds: each stage alone (the batch's images concurrently, as the product runs them; resize = decode with resize - decode alone; score = the LFDN with every score type), then in the pipeline: the encoder's idle wait for the prefetched batch and the encode.`,
  '',
  '| runtime | source | decode | processes x threads | extract img/s (total) | encoder alone img/s (per process) | read | decode | resize | encode | score | pipeline: wait / encode | peak RSS MB (per process) |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const e of extract) {
  const runs = e['runs'] as Json[];
  const mean = (k: string): number => runs.reduce((s, r) => s + ((r['perBatchMs'] as Json)[k] as number), 0) / runs.length;
  const total = runs.reduce((s, r) => s + (r['imgPerS'] as number), 0);
  const batch = runs[0]!['batchSize'] as number;
  lines.push(
    `| ${String(runs[0]!['runtime'])} | ${String(e['source'])} | ${String(e['decode'])} | ${String(e['processes'])} x ${String(e['threads'] ?? 1)} | ${f(total)} | ${runs.map((r) => f(r['encodeOnlyImgPerS'])).join(', ')} | ${f(mean('read'))} | ${f(mean('decode'))} | ${f(mean('decodeResize') - mean('decode'))} | ${f(mean('encode'))} | ${f((batch / scoreAll) * 1000)} | ${f(mean('pipelineWait'))} / ${f(mean('pipelineEncode'))} | ${runs.map((r) => f(r['maxRssMB'], 0)).join(', ')} |`,
  );
}
// The targets of issue 16, per runtime: the default layout (one process per core) from the folder and from S3.
const totalOf = (e: Json): number => (e['runs'] as Json[]).reduce((s, r) => s + (r['imgPerS'] as number), 0);
for (const decode of decodeModes) for (const b of backends) {
  const local = extract.find((e) => e['backend'] === b && e['decode'] === decode && e['source'] === 'local' && e['processes'] === cores);
  const remote = extract.find((e) => e['backend'] === b && e['decode'] === decode && e['source'] === 's3');
  if (local === undefined) continue;
  const l = totalOf(local);
  lines.push('', `${String((local['runs'] as Json[])[0]!['runtime'])}, ${cores} processes, decoding in the ${decode === 'thread' ? 'decode thread' : 'main thread'}: ${f(l)} img/s from the folder (target 250; ${f(l / PYTORCH_REFERENCE)}x the PyTorch reference of ${PYTORCH_REFERENCE} img/s, target 10x)${remote !== undefined ? `, ${f(totalOf(remote))} img/s from S3 = ${f((100 * totalOf(remote)) / l, 0)}% of the folder (target 90%; s3rver itself took ${f(100 * ((remote['s3rverCoreShare'] as number | undefined) ?? 0), 0)}% of the ${cores} cores)` : ''}.`);
}
lines.push('', `| measure | 1 process | per process with ${cores} | total with ${cores} | peak RSS (MB) | tensors before/after |`, '|---|---|---|---|---|---|');
for (const k of ['dlsr', 'dlsrWithLr', 'allScores'] as const) {
  const one = (sc1['imgPerS'] as Json)[k] as number;
  const each = scN.map((r) => (r['imgPerS'] as Json)[k] as number);
  lines.push(`| score img/s (${k}) | ${f(one, 0)} | ${each.map((x) => f(x, 0)).join(', ')} | ${f(each.reduce((a, b) => a + b, 0), 0)} | ${f(sc1['maxRssMB'], 0)} | ${f(sc1['tensorsBefore'], 0)}/${f(sc1['tensorsAfter'], 0)} |`);
}
if (!values['skip-train']) {
  console.log(`train: ${epochs} epochs of 45,000 rows`);
  const tr = await child({ task: 'train', trainRows: 45_000, epochs });
  result['train'] = tr;
  const epochSecs = tr['epochSeconds'] as number[];
  const perEpoch = epochSecs.reduce((a, b) => a + b, 0) / epochSecs.length;
  result['trainProjectedMinutes'] = (perEpoch * cfg.train.epochs) / 60;
  lines.push(`| train s/epoch (45k rows) | ${f(perEpoch)} | | | ${f(tr['maxRssMB'], 0)} | ${f(tr['tensorsBefore'], 0)}/${f(tr['tensorsAfter'], 0)} |`);
  lines.push('', `Projected training time for the default ${cfg.train.epochs} epochs: ${f(result['trainProjectedMinutes'])} min.`);
}
const table = lines.join('\n') + '\n';
process.stdout.write(`\n${table}`);
mkdirSync(path.join(REPO, 'bench/out'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/out/speed.json'), JSON.stringify(result, null, 2) + '\n');
mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/results/speed.md'), table);
console.log('wrote bench/results/speed.md and bench/out/speed.json');
