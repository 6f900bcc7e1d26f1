// One process of bench:speed: runs the measured task in the JSON file argv[2] names and prints a JSON line with its figures.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../src/shared/backend.js';
import { createEncoder } from '../../src/shared/encoder/registry.js';
import { DEFAULT_ENCODER } from '../../src/shared/encoder/spec.js';
import { extractFeatures, type BatchStages } from '../../src/shared/extract.js';
import { decodeImage } from '../../src/shared/image/decode.js';
import sharp from 'sharp';
import type { BackendChoice } from '../../src/shared/backend-choice.js';
import { defaultConfig } from '../../src/shared/dlsr/config.js';
import { fitDlsr, lfdnConfigFor } from '../../src/shared/dlsr/fit.js';
import { makeSchedule } from '../../src/shared/diffusion/schedule.js';
import { newTrainState, trainEpoch, disposeTrainState } from '../../src/shared/diffusion/train.js';
import { disposeModel, scoreFeatures } from '../../src/shared/dlsr/model.js';
import { standardiseStages } from '../../src/shared/features.js';
import { Rng } from '../../src/shared/rng.js';
import { makeFingerprint } from '../../src/shared/encoder/encoder.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { openLocation } from '../../src/shared/storage/open.js';
import { joinKey } from '../../src/shared/storage/object-store.js';
import { parseEnv } from '../../src/shared/config/env.js';

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { task: 'extract' | 'score' | 'train'; backend?: BackendChoice; decodeThread?: boolean; threads?: number; dir?: string; keys?: string[]; rows?: number; epochs?: number; trainRows?: number };
/** Images from a local folder, or through the product's object store when `dir` is an s3:// URI. */
const readImage: (key: string) => Promise<Uint8Array> = job.dir?.startsWith('s3://') === true
  ? (() => {
      const loc = openLocation(job.dir, parseEnv(process.env), false);
      return (k: string) => loc.store.get(joinKey(loc.prefix, k));
    })()
  : (k: string) => readFile(path.join(job.dir!, k));
const backend = await initBackend(job.backend ?? 'auto', job.threads !== undefined ? { ortThreads: job.threads } : {});
const rssMB = (): number => process.resourceUsage().maxRSS / 1024;
const cfg = defaultConfig();

if (job.task === 'extract') {
  const encoder = await createEncoder(DEFAULT_ENCODER, { runtime: backend.encoder });
  // Warm-up batch outside the timing.
  const items = job.keys!.map((key) => ({ key }));
  await extractFeatures(encoder, items.slice(0, encoder.batchSize), readImage, { decodeThread: job.decodeThread ?? true });
  const before = tf.memory().numTensors;
  const stages = { wait: 0, encode: 0 };
  let batches = 0;
  const t = performance.now();
  const set = await extractFeatures(encoder, items, readImage, {
    decodeThread: job.decodeThread ?? true,
    onBatch: (_s, _n, st) => {
      batches++;
      for (const k of Object.keys(stages) as (keyof BatchStages)[]) stages[k] += st[k];
    },
  });
  const seconds = (performance.now() - t) / 1000;
  // Each stage alone, batch by batch as the product runs it (a batch's images concurrently): read,
  // decode (sharp to raw pixels at the file's size), decode + resize (the product's decodeImage),
  // encode. Resize is the difference of the two decodes.
  const alone = { read: 0, decode: 0, decodeResize: 0, encode: 0 };
  const nAlone = Math.min(8, Math.floor(job.keys!.length / encoder.batchSize));
  let encoded = 0;
  for (let b = 0; b < nAlone; b++) {
    const batchKeys = job.keys!.slice(b * encoder.batchSize, (b + 1) * encoder.batchSize);
    let t0 = performance.now();
    const bytes = await Promise.all(batchKeys.map(readImage));
    alone.read += performance.now() - t0;
    t0 = performance.now();
    await Promise.all(bytes.map((x) => sharp(x).removeAlpha().raw().toBuffer()));
    alone.decode += performance.now() - t0;
    t0 = performance.now();
    const decoded = await Promise.all(bytes.map((x, i) => decodeImage(batchKeys[i]!, x, { size: encoder.inputSize })));
    alone.decodeResize += performance.now() - t0;
    const pixels = decoded.flatMap((r) => (r.ok ? [r.pixels] : []));
    t0 = performance.now();
    await encoder.encode(pixels);
    alone.encode += performance.now() - t0;
    encoded += pixels.length;
  }
  const encodeOnly = encoded / (alone.encode / 1000);
  const perBatch = {
    ...Object.fromEntries(Object.entries(alone).map(([k, v]) => [k, v / Math.max(1, nAlone)])),
    ...Object.fromEntries(Object.entries(stages).map(([k, v]) => [`pipeline${k[0]!.toUpperCase()}${k.slice(1)}`, v / Math.max(1, batches)])),
  };
  console.log(JSON.stringify({ task: 'extract', backend: backend.label, runtime: encoder.runtime, images: set.keys.length, seconds, imgPerS: set.keys.length / seconds, encodeOnlyImgPerS: encodeOnly, batchSize: encoder.batchSize, perBatchMs: perBatch, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
  encoder.dispose();
} else {
  const stageSizes = [24, 32, 64, 96];
  const d = stageSizes.reduce((a, b) => a + b, 0);
  const rng = new Rng(1);
  const n = job.task === 'train' ? job.trainRows! : job.rows!;
  const raw = new Float32Array(n * d);
  rng.fillNormal(raw);
  if (job.task === 'train') {
    const lfdn = lfdnConfigFor(cfg, d);
    const state = newTrainState(lfdn, 0);
    const schedule = makeSchedule(cfg.schedule);
    const z = standardiseStages(raw, stageSizes);
    const secs: number[] = [];
    const before = tf.memory().numTensors;
    for (let e = 0; e < job.epochs!; e++) secs.push(trainEpoch(state, lfdn, schedule, cfg.train, z).seconds);
    console.log(JSON.stringify({ task: 'train', backend: backend.label, rows: n, epochSeconds: secs, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
    disposeTrainState(state);
  } else {
    // A real model of the default configuration (whitening, baselines, calibration), fitted for one
    // epoch on 5,000 synthetic rows: the scoring cost does not depend on how well it is trained.
    const fingerprint = makeFingerprint({ encoder: 'synthetic', weightsSha256: sha256Hex('synthetic weights'), taps: ['a', 'b', 'c', 'd'], inputSize: 224, preprocessing: { kind: 'unit' }, pooling: 'gap' });
    const trainKeys = Array.from({ length: 5000 }, (_, i) => `train-${i}.jpg`);
    const digestsOf = (keys: string[]): string[] => keys.map((k) => sha256Hex(k));
    const { model } = await fitDlsr({ fingerprint, stageSizes, keys: trainKeys, digests: digestsOf(trainKeys), features: raw.slice(0, 5000 * d), failures: [] }, { ...cfg, train: { ...cfg.train, epochs: 1 } }, { backend: backend.provider, versions: {} });
    const keys = Array.from({ length: n }, (_, i) => `img-${i}.jpg`);
    const rows = { keys, digests: digestsOf(keys), features: raw };
    scoreFeatures(model, { keys: keys.slice(0, 512), digests: rows.digests.slice(0, 512), features: raw.subarray(0, 512 * d) }); // warm-up
    const before = tf.memory().numTensors;
    const timed = (options: Parameters<typeof scoreFeatures>[2]): number => {
      const t = performance.now();
      scoreFeatures(model, rows, options);
      return n / ((performance.now() - t) / 1000);
    };
    const dlsr = timed({ types: new Set(['fused', 'mfsim', 'mfsim_all', 'mse'] as const) });
    const withLr = timed({ types: new Set(['fused', 'mfsim', 'mfsim_all', 'mse', 'lr'] as const) });
    const all = timed({});
    console.log(JSON.stringify({ task: 'score', backend: backend.label, rows: n, imgPerS: { dlsr, dlsrWithLr: withLr, allScores: all }, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
    disposeModel(model);
  }
}
