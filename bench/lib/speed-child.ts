// One process of bench:speed: runs a measured task and prints a JSON line with its figures.
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../src/shared/backend.js';
import { createEncoder } from '../../src/shared/encoder/registry.js';
import { DEFAULT_ENCODER } from '../../src/shared/encoder/spec.js';
import { extractFeatures } from '../../src/shared/extract.js';
import { defaultConfig } from '../../src/shared/dlsr/config.js';
import { fitDlsr, lfdnConfigFor } from '../../src/shared/dlsr/fit.js';
import { makeSchedule } from '../../src/shared/diffusion/schedule.js';
import { newTrainState, trainEpoch, disposeTrainState } from '../../src/shared/diffusion/train.js';
import { disposeModel, scoreFeatures } from '../../src/shared/dlsr/model.js';
import { standardiseStages } from '../../src/shared/features.js';
import { Rng } from '../../src/shared/rng.js';
import { makeFingerprint } from '../../src/shared/encoder/encoder.js';
import { sha256Hex } from '../../src/shared/hash.js';

const job = JSON.parse(process.argv[2]!) as { task: 'extract' | 'score' | 'train'; dir?: string; keys?: string[]; rows?: number; epochs?: number; trainRows?: number };
const backend = await initBackend('auto');
const rssMB = (): number => process.resourceUsage().maxRSS / 1024;
const cfg = defaultConfig();

if (job.task === 'extract') {
  const encoder = await createEncoder(DEFAULT_ENCODER);
  // Warm-up batch outside the timing.
  const items = job.keys!.map((key) => ({ key }));
  await extractFeatures(encoder, items.slice(0, encoder.batchSize), (k) => readFile(path.join(job.dir!, k)));
  const before = tf.memory().numTensors;
  const t = performance.now();
  const set = await extractFeatures(encoder, items, (k) => readFile(path.join(job.dir!, k)));
  const seconds = (performance.now() - t) / 1000;
  console.log(JSON.stringify({ task: 'extract', backend: backend.provider, images: set.keys.length, seconds, imgPerS: set.keys.length / seconds, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
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
    console.log(JSON.stringify({ task: 'train', backend: backend.provider, rows: n, epochSeconds: secs, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
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
    console.log(JSON.stringify({ task: 'score', backend: backend.provider, rows: n, imgPerS: { dlsr, dlsrWithLr: withLr, allScores: all }, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
    disposeModel(model);
  }
}
