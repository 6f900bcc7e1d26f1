// One process of bench:speed: runs a measured task and prints a JSON line with its figures.
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../src/shared/backend.js';
import { createEncoder, DEFAULT_ENCODER } from '../../src/shared/encoder/registry.js';
import { extractFeatures } from '../../src/shared/extract.js';
import { defaultConfig, whitenModeOf } from '../../src/shared/dlsr/config.js';
import { lfdnConfigFor } from '../../src/shared/dlsr/fit.js';
import { makeSchedule } from '../../src/shared/diffusion/schedule.js';
import { newTrainState, trainEpoch, disposeTrainState, emaParams } from '../../src/shared/diffusion/train.js';
import { makeDenoiser } from '../../src/shared/diffusion/ddim.js';
import { fitKnn, fitMahalanobis } from '../../src/shared/baselines.js';
import { scoreFeatures, type DlsrModel } from '../../src/shared/dlsr/model.js';
import { standardiseStages } from '../../src/shared/features.js';
import { Rng } from '../../src/shared/rng.js';
import { fitWhitening } from '../../src/shared/whitening.js';
import { FUSED_PARTS } from '../../src/shared/scores.js';

const job = JSON.parse(process.argv[2]!) as { task: 'extract' | 'score' | 'train'; dir?: string; keys?: string[]; rows?: number; epochs?: number; trainRows?: number };
const backend = await initBackend('auto');
const rssMB = (): number => process.resourceUsage().maxRSS / 1024;
const cfg = defaultConfig();

if (job.task === 'extract') {
  const encoder = await createEncoder(DEFAULT_ENCODER);
  // Warm-up batch outside the timing.
  await extractFeatures(encoder, job.keys!.slice(0, encoder.batchSize), (k) => readFile(path.join(job.dir!, k)));
  const before = tf.memory().numTensors;
  const t = performance.now();
  const set = await extractFeatures(encoder, job.keys!, (k) => readFile(path.join(job.dir!, k)));
  const seconds = (performance.now() - t) / 1000;
  console.log(JSON.stringify({ task: 'extract', backend: backend.provider, images: set.keys.length, seconds, imgPerS: set.keys.length / seconds, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
} else {
  const stageSizes = [24, 32, 64, 96];
  const d = stageSizes.reduce((a, b) => a + b, 0);
  const rng = new Rng(1);
  const n = job.task === 'train' ? job.trainRows! : job.rows!;
  const raw = new Float32Array(n * d);
  rng.fillNormal(raw);
  const lfdn = lfdnConfigFor(cfg, d);
  const state = newTrainState(lfdn, 0);
  const schedule = makeSchedule(cfg.schedule);
  if (job.task === 'train') {
    const z = standardiseStages(raw, stageSizes);
    const secs: number[] = [];
    const before = tf.memory().numTensors;
    for (let e = 0; e < job.epochs!; e++) secs.push(trainEpoch(state, lfdn, schedule, cfg.train, z).seconds);
    console.log(JSON.stringify({ task: 'train', backend: backend.provider, rows: n, epochSeconds: secs, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
  } else {
    const z = standardiseStages(raw, stageSizes);
    const model: DlsrModel = {
      config: cfg, fingerprint: { encoder: 'synthetic', weightsSha256: '', taps: [], inputSize: 224, preprocessing: { kind: 'unit' }, pooling: 'gap', id: 'synthetic' },
      stageSizes, final: makeDenoiser(emaParams(state), lfdn), first: makeDenoiser(emaParams(state), lfdn),
      // The default configuration's whitening and fused score, fitted on the synthetic rows.
      whitening: fitWhitening(z.subarray(0, 5000 * d), stageSizes, whitenModeOf(cfg)), fusion: { parts: FUSED_PARTS, mean: [0, 0], std: [1, 1] },
      mahalanobis: fitMahalanobis(z.subarray(0, 5000 * d), d), knn: fitKnn(z.subarray(0, 5000 * d), d, 10), calibration: undefined,
      info: { backend: backend.provider, versions: {}, trainCount: 0, holdoutCount: 0, epochs: 0, trainSeconds: 0 },
    };
    const keys = Array.from({ length: n }, (_, i) => `img-${i}.jpg`);
    scoreFeatures(model, raw.subarray(0, 512 * d), keys.slice(0, 512)); // warm-up
    const before = tf.memory().numTensors;
    const timed = (types: Parameters<typeof scoreFeatures>[3]): number => {
      const t = performance.now();
      scoreFeatures(model, raw, keys, types);
      return n / ((performance.now() - t) / 1000);
    };
    const dlsr = timed({ types: ['fused', 'mfsim', 'mfsim_all', 'mse'] });
    const withLr = timed({ types: ['fused', 'mfsim', 'mfsim_all', 'mse', 'lr'] });
    const all = timed({});
    console.log(JSON.stringify({ task: 'score', backend: backend.provider, rows: n, imgPerS: { dlsr, dlsrWithLr: withLr, allScores: all }, maxRssMB: rssMB(), tensorsBefore: before, tensorsAfter: tf.memory().numTensors }));
  }
  disposeTrainState(state);
}
