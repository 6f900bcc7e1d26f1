import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { makeSchedule } from '../../src/shared/diffusion/schedule.js';
import { countParams, forward, initParams, paramSpecs, disposeParams, sinusoidTable, timeTable, dense } from '../../src/shared/diffusion/lfdn.js';
import { ddimStepCoefficients, ddimTimesteps, drawNoise, makeDenoiser, reconstruct } from '../../src/shared/diffusion/ddim.js';
import { disposeTrainState, newTrainState, trainEpoch } from '../../src/shared/diffusion/train.js';
import { Rng } from '../../src/shared/rng.js';
import { useWasm } from '../helpers/tf.js';

useWasm();

describe('schedule', () => {
  it('matches the numbers in METHOD.md', () => {
    const s = makeSchedule();
    expect(s.betas.length).toBe(100);
    expect(s.betas[0]).toBeCloseTo(0.0015, 12);
    expect(s.betas[99]).toBeCloseTo(0.0195, 12);
    expect(Math.sqrt(s.alphaBar[3]!)).toBeCloseTo(0.99676, 5);
    expect(Math.sqrt(1 - s.alphaBar[3]!)).toBeCloseTo(0.08045, 4);
    for (let i = 1; i < 100; i++) expect(s.alphaBar[i]!).toBeLessThan(s.alphaBar[i - 1]!);
  });
});

describe('LFDN', () => {
  const cfg = { featureSize: 12, width: 16, depth: 2, timesteps: 100 };

  it('has the documented parameter shapes and zero-initialised output', () => {
    const p = initParams(cfg, 1);
    expect(p.get('input.weight')!.shape).toEqual([12, 16]);
    expect(p.get('time.0.weight')!.shape).toEqual([16, 12]);
    expect(p.get('time.1.weight')!.shape).toEqual([12, 12]);
    expect(p.get('block1.emb.weight')!.shape).toEqual([12, 16]);
    for (const name of ['block0.lin2.weight', 'block0.lin2.bias', 'out.weight', 'out.bias']) {
      expect(Array.from(p.get(name)!.dataSync()).every((v) => v === 0), name).toBe(true);
    }
    expect(countParams(cfg)).toBe(paramSpecs(cfg).reduce((s, x) => s + x.shape.reduce((a, b) => a * b, 1), 0));
    // Paper size at D = 720: about 87 M parameters.
    expect(countParams({ featureSize: 720, width: 1440, depth: 16, timesteps: 100 }) / 1e6).toBeGreaterThan(80);
    const out = tf.tidy(() => forward(p, cfg, tf.randomNormal([5, 12]) as tf.Tensor2D, tf.slice(timeTable(p, cfg), [3, 0], [1, 12])));
    expect(out.shape).toEqual([5, 12]);
    expect(Math.max(...Array.from(out.dataSync()).map(Math.abs))).toBe(0);
    out.dispose();
    disposeParams(p);
  });

  it('sinusoid table has cos then sin halves', () => {
    const t = sinusoidTable(4, 8);
    expect(t[0]).toBe(1); // cos(0)
    expect(t[4]).toBe(0); // sin(0)
    expect(t[8 + 0]).toBeCloseTo(Math.cos(1), 6);
  });

  it('dense gradient equals the autodiff gradient of matMul', () => {
    const x = tf.randomNormal([6, 5]);
    const w = tf.randomNormal([5, 4]);
    const g1 = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(dense(a as tf.Tensor2D, b as tf.Tensor2D))))([x, w]);
    const g2 = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D))))([x, w]);
    for (let i = 0; i < 2; i++) {
      const a = g1[i]!.dataSync();
      const b = g2[i]!.dataSync();
      for (let j = 0; j < a.length; j++) expect(a[j]).toBeCloseTo(b[j]!, 3);
    }
    tf.dispose([x, w, ...g1, ...g2]);
  });
});

describe('DDIM reconstruction', () => {
  const cfg = { featureSize: 6, width: 8, depth: 1, timesteps: 100 };
  const sched = makeSchedule();

  it('steps from t down to 1', () => {
    expect(ddimTimesteps(3, 3)).toEqual([3, 2, 1]);
    expect(ddimTimesteps(10, 4)).toEqual([10, 7, 4, 1]);
    expect(ddimTimesteps(5, 1)).toEqual([5]);
    expect(() => ddimTimesteps(3, 4)).toThrow(/DDIM steps/);
  });

  it('DDIM coefficients match the formulas by hand', () => {
    const ab = sched.alphaBar;
    const c = ddimStepCoefficients(ab[3]!, ab[2]!, 1);
    const sigma = Math.sqrt((1 - ab[2]!) / (1 - ab[3]!)) * Math.sqrt(1 - ab[3]! / ab[2]!);
    expect(c.sigma).toBeCloseTo(sigma, 12);
    expect(c.a).toBeCloseTo(Math.sqrt(ab[2]!), 12);
    expect(c.dir).toBeCloseTo(Math.sqrt(1 - ab[2]! - sigma * sigma), 12);
    // eta = 0 is deterministic DDIM: no noise, direction sqrt(1 - ab_prev).
    const d = ddimStepCoefficients(ab[3]!, ab[2]!, 0);
    expect(d.sigma).toBe(0);
    expect(d.dir).toBeCloseTo(Math.sqrt(1 - ab[2]!), 12);
  });

  it('returns the last prediction: a network that always predicts c reconstructs c', () => {
    const p = initParams(cfg, 3);
    const c = [0.5, -1, 2, 0, 3, -0.25];
    p.get('out.bias')!.dispose();
    p.set('out.bias', tf.tensor1d(c));
    const den = makeDenoiser(p, cfg);
    const rec = reconstruct(den, sched, new Float32Array(12).fill(7), drawNoise(['a', 'b'], 1, 3, 6), 2, { t: 3, steps: 3, eta: 1, seed: 1 });
    expect(Array.from(rec)).toEqual([...c, ...c]);
    disposeParams(p);
    den.table.dispose();
  });

  it('a fresh network (zero-initialised output) reconstructs zeros', () => {
    // The output layer is zero-initialised, so every prediction (and the reconstruction) is 0.
    const p = initParams(cfg, 3);
    const den = makeDenoiser(p, cfg);
    const z0 = Float32Array.from({ length: 12 }, (_, i) => i / 3 - 2);
    const noise = drawNoise(['a', 'b'], 5, 3, 6);
    const rec = reconstruct(den, sched, z0, noise, 2, { t: 3, steps: 3, eta: 1, seed: 5 });
    expect(Array.from(rec).every((v) => v === 0)).toBe(true);
    disposeParams(p);
    den.table.dispose();
  });

  it('is deterministic per key and independent of batching', () => {
    const st = newTrainState(cfg, 4);
    const data = new Float32Array(64 * 6);
    new Rng(1).fillNormal(data);
    trainEpoch(st, cfg, sched, { epochs: 1, batchSize: 16, lr: 1e-2, weightDecay: 0, emaDecay: 0, seed: 1 }, data);
    const den = makeDenoiser(new Map([...st.params].map(([k, v]) => [k, v.clone()])), cfg);
    const keys = ['x', 'y', 'z'];
    const z0 = data.subarray(0, 18);
    const all = reconstruct(den, sched, z0, drawNoise(keys, 9, 3, 6), 3, { t: 3, steps: 3, eta: 1, seed: 9 });
    const one = reconstruct(den, sched, z0.subarray(6, 12), drawNoise(['y'], 9, 3, 6), 1, { t: 3, steps: 3, eta: 1, seed: 9 });
    expect(Array.from(one)).toEqual(Array.from(all.subarray(6, 12)));
    const other = reconstruct(den, sched, z0, drawNoise(keys, 10, 3, 6), 3, { t: 3, steps: 3, eta: 1, seed: 10 });
    expect(Array.from(other)).not.toEqual(Array.from(all));
    disposeParams(den.params);
    den.table.dispose();
    disposeTrainState(st);
  });
});

describe('training', () => {
  it('reduces the loss, is seeded, and does not leak tensors', () => {
    const cfg = { featureSize: 8, width: 32, depth: 2, timesteps: 100 };
    const sched = makeSchedule();
    const data = new Float32Array(256 * 8);
    const rng = new Rng(2);
    for (let i = 0; i < 256; i++) {
      const a = rng.normal();
      for (let j = 0; j < 8; j++) data[i * 8 + j] = a * (j % 2 === 0 ? 1 : -1) + 0.1 * rng.normal();
    }
    const tc = { epochs: 1, batchSize: 32, lr: 3e-3, weightDecay: 1e-4, emaDecay: 0.99, seed: 3 };
    const run = (): number[] => {
      const st = newTrainState(cfg, 11);
      const before = tf.memory().numTensors;
      const losses = Array.from({ length: 6 }, () => trainEpoch(st, cfg, sched, tc, data).loss);
      expect(tf.memory().numTensors).toBe(before);
      disposeTrainState(st);
      return losses;
    };
    const a = run();
    const b = run();
    expect(a).toEqual(b);
    expect(a[5]!).toBeLessThan(a[0]! * 0.8);
  });
});
