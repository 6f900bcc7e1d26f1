/**
 * Distortion and DDIM reconstruction (METHOD.md §3). Features are distorted to timestep t,
 * z_t = sqrt(ab_t) z0 + sqrt(1 - ab_t) eps, then reconstructed by DDIM steps at timesteps
 * t, ..., 1 (evenly spaced when fewer steps are asked for); the step at the last timestep goes to
 * the clean sample, so its prediction is the reconstruction. With the x0-predicting net,
 * eps_hat = (z_t - sqrt(ab_t) z0_hat) / sqrt(1 - ab_t). eta scales the DDIM noise (1 = DDPM-like).
 *
 * Noise is drawn per image from seedFor(seed, its content digest), so the result does not depend on
 * the image's name, location or batch.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import { Rng, seedFor } from '../rng.js';
import { forward, timeTable, type LfdnParams } from './lfdn.js';
import type { Schedule } from './schedule.js';
import type { LfdnConfig, ReconstructConfig } from './config.js';

/** DDIM timestep sequence: `steps` timesteps evenly spaced from t down to 1 (distinct, descending). */
export function ddimTimesteps(t: number, steps: number): number[] {
  if (!Number.isInteger(t) || t < 1) throw new OodError('CONFIG_INVALID', `invalid distortion timestep: expected an integer >= 1, got ${t}`);
  if (!Number.isInteger(steps) || steps < 1 || steps > t) {
    throw new OodError('CONFIG_INVALID', `invalid DDIM steps: expected an integer in [1, ${t}] for t = ${t}, got ${steps}`);
  }
  if (steps === 1) return [t];
  const seq: number[] = [];
  for (let i = 0; i < steps; i++) seq.push(Math.round(t - ((t - 1) * i) / (steps - 1)));
  return seq;
}

/** Per-image noise: [n, steps, D] normals, row i drawn from seedFor(seed, ids[i]) (the image's content digest). */
export function drawNoise(ids: readonly string[], seed: number, steps: number, d: number): Float32Array {
  const out = new Float32Array(ids.length * steps * d);
  ids.forEach((id, i) => new Rng(seedFor(seed, id)).fillNormal(out, i * steps * d, steps * d));
  return out;
}

/** Coefficients of one DDIM update z_prev = a * z0_hat + dir * eps_hat + sigma * noise. */
export function ddimStepCoefficients(abK: number, abPrev: number, eta: number): { a: number; dir: number; sigma: number } {
  const sigma = eta * Math.sqrt((1 - abPrev) / (1 - abK)) * Math.sqrt(1 - abK / abPrev);
  return { a: Math.sqrt(abPrev), dir: Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma)), sigma };
}

export interface Denoiser {
  readonly params: LfdnParams;
  readonly config: LfdnConfig;
  /** Time-embedding table [T, D], computed once per parameter set. */
  readonly table: tf.Tensor2D;
}

export function makeDenoiser(params: LfdnParams, config: LfdnConfig): Denoiser {
  return { params, config, table: tf.tidy(() => timeTable(params, config)) };
}

/**
 * Reconstructs z0 ([n, D], row-major) with the given denoiser and per-image noise ([n, steps, D]).
 * Returns the reconstruction as a new array.
 */
export function reconstruct(den: Denoiser, schedule: Schedule, z0: Float32Array, noise: Float32Array, n: number, cfg: ReconstructConfig): Float32Array {
  const d = den.config.featureSize;
  const seq = ddimTimesteps(cfg.t, cfg.steps);
  if (cfg.t >= schedule.alphaBar.length) throw new OodError('CONFIG_INVALID', `invalid distortion timestep: expected < ${schedule.alphaBar.length}, got ${cfg.t}`);
  if (z0.length !== n * d) throw new OodError('SHAPE_MISMATCH', `reconstruct: expected ${n}x${d} features, got ${z0.length} values`);
  if (noise.length !== n * seq.length * d) throw new OodError('SHAPE_MISMATCH', `reconstruct: expected ${n}x${seq.length}x${d} noise values, got ${noise.length}`);
  const ab = schedule.alphaBar;
  const out = tf.tidy(() => {
    const noise3 = tf.tensor3d(noise, [n, seq.length, d]);
    const eps = tf.unstack(noise3, 1) as tf.Tensor2D[];
    const x0 = tf.tensor2d(z0, [n, d]);
    const abT = ab[cfg.t]!;
    let z = tf.add(tf.mul(x0, Math.sqrt(abT)), tf.mul(eps[0]!, Math.sqrt(1 - abT))) as tf.Tensor2D;
    let x0hat = z;
    seq.forEach((k, i) => {
      const emb = tf.slice(den.table, [k, 0], [1, d]);
      x0hat = forward(den.params, den.config, z, emb);
      if (i === seq.length - 1) return;
      const abK = ab[k]!;
      const abP = ab[seq[i + 1]!]!;
      const epsHat = tf.div(tf.sub(z, tf.mul(x0hat, Math.sqrt(abK))), Math.sqrt(1 - abK));
      const c = ddimStepCoefficients(abK, abP, cfg.eta);
      z = tf.add(tf.add(tf.mul(x0hat, c.a), tf.mul(epsHat, c.dir)), tf.mul(eps[i + 1]!, c.sigma)) as tf.Tensor2D;
    });
    return x0hat;
  });
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}
