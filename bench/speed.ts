/**
 * bench:speed: throughput and memory on this machine, per process and with one process per core.
 *   extract  CIFAR-10 test JPEGs -> default encoder features at 224 (decode included)
 *   score    the CPU-preset LFDN on 10,000 feature rows (DLSR scores, + LR, + baselines)
 *   train    CPU-preset epochs on 45,000 rows (the CIFAR-10 training set minus the 10% holdout)
 * Prints a Markdown table, writes it to bench/results/speed.md (quoted by the README) and the raw
 * figures to bench/out/speed.json. Options: --images N (default 1024), --epochs N (default 2).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { datasetDir, listKeys, REPO } from './lib/data.js';
import { defaultConfig } from '../src/shared/dlsr/config.js';

const { values } = parseArgs({ options: { images: { type: 'string', default: '1024' }, epochs: { type: 'string', default: '2' } } });
const nImages = Number(values.images);
const epochs = Number(values.epochs);

type Json = Record<string, unknown>;
function child(job: Json): Promise<Json> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/lib/speed-child.ts'), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as Json) : reject(new Error(`speed child exited with ${code}`))));
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

console.log(`extract: ${nImages} CIFAR-10 test images per process at ${cfg.encoder.inputSize}px (decode included)`);
const ex1 = await child({ task: 'extract', dir, keys: slice(0, 1) });
const exN = await parallel(Array.from({ length: cores }, (_, p) => ({ task: 'extract', dir, keys: slice(p, cores) })));
result['extract'] = { oneProcess: ex1, perCore: exN };

console.log('score: 10,000 rows per process');
const sc1 = await child({ task: 'score', rows: 10_000 });
const scN = await parallel(Array.from({ length: cores }, () => ({ task: 'score', rows: 10_000 })));
result['score'] = { oneProcess: sc1, perCore: scN };

console.log(`train: ${epochs} epochs of 45,000 rows`);
const tr = await child({ task: 'train', trainRows: 45_000, epochs });
result['train'] = tr;
const epochSecs = tr['epochSeconds'] as number[];
const perEpoch = epochSecs.reduce((a, b) => a + b, 0) / epochSecs.length;
result['trainProjectedMinutes'] = (perEpoch * cfg.train.epochs) / 60;

const f = (x: unknown, d = 1): string => (typeof x === 'number' ? x.toFixed(d) : String(x));
const sumRate = (rs: Json[], k: string): number => rs.reduce((s, r) => s + (r[k] as number), 0);
const lines = [
  `bench:speed, ${String(result['date']).slice(0, 10)}, ${cores} cores, backend ${String(ex1['backend'])}`,
  '',
  `| measure | 1 process | per process with ${cores} | total with ${cores} | peak RSS (MB) | tensors before/after |`,
  '|---|---|---|---|---|---|',
  `| extract img/s | ${f(ex1['imgPerS'])} | ${exN.map((r) => f(r['imgPerS'])).join(', ')} | ${f(sumRate(exN, 'imgPerS'))} | ${f(ex1['maxRssMB'], 0)} | ${f(ex1['tensorsBefore'], 0)}/${f(ex1['tensorsAfter'], 0)} |`,
];
for (const k of ['dlsr', 'dlsrWithLr', 'allScores'] as const) {
  const one = (sc1['imgPerS'] as Json)[k] as number;
  const each = scN.map((r) => (r['imgPerS'] as Json)[k] as number);
  lines.push(`| score img/s (${k}) | ${f(one, 0)} | ${each.map((x) => f(x, 0)).join(', ')} | ${f(each.reduce((a, b) => a + b, 0), 0)} | ${f(sc1['maxRssMB'], 0)} | ${f(sc1['tensorsBefore'], 0)}/${f(sc1['tensorsAfter'], 0)} |`);
}
lines.push(`| train s/epoch (45k rows) | ${f(perEpoch)} | | | ${f(tr['maxRssMB'], 0)} | ${f(tr['tensorsBefore'], 0)}/${f(tr['tensorsAfter'], 0)} |`);
lines.push('', `Projected training time for the default ${cfg.train.epochs} epochs: ${f(result['trainProjectedMinutes'])} min.`);
const table = lines.join('\n') + '\n';
process.stdout.write(`\n${table}`);
mkdirSync(path.join(REPO, 'bench/out'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/out/speed.json'), JSON.stringify(result, null, 2) + '\n');
mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/results/speed.md'), table);
console.log('wrote bench/results/speed.md and bench/out/speed.json');
