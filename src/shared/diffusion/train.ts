/**
 * LFDN training (METHOD.md §2): x0-prediction MSE with t uniform in [0, T), AdamW (decoupled weight
 * decay), an EMA of the weights with warm-up min(decay, (1 + n) / (10 + n)), seeded shuffling and
 * noise from our own generator. The whole state (weights, EMA, Adam moments, step, epoch, RNG) is a
 * `TrainState` that serialises to a checkpoint, so a killed run resumes exactly where it stopped.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import { Rng } from '../rng.js';
import { timestepSelector, forward, initParams, paramSpecs, timeTable, type LfdnParams } from './lfdn.js';
import type { Schedule } from './schedule.js';
import type { LfdnConfig, TrainConfig } from './config.js';

const BETA1 = 0.9;
const BETA2 = 0.999;
const ADAM_EPS = 1e-8;

export interface TrainState {
  /** Completed epochs. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  readonly params: Map<string, tf.Variable>;
  readonly ema: Map<string, tf.Variable>;
  readonly m: Map<string, tf.Variable>;
  readonly v: Map<string, tf.Variable>;
  rng: Rng;
}

export function newTrainState(lfdn: LfdnConfig, seed: number): TrainState {
  const init = initParams(lfdn, seed);
  const state = stateFromTensors(lfdn, {
    params: init,
    ema: new Map([...init].map(([k, v]) => [k, v.clone()] as const)),
    m: new Map([...init].map(([k, v]) => [k, tf.zerosLike(v)] as const)),
    v: new Map([...init].map(([k, v]) => [k, tf.zerosLike(v)] as const)),
  }, 0, 0, new Rng(seed ^ 0x5eed));
  return state;
}

/** Builds a state from plain tensors (which it takes ownership of). */
export function stateFromTensors(
  lfdn: LfdnConfig,
  t: { params: LfdnParams; ema: LfdnParams; m: LfdnParams; v: LfdnParams },
  epoch: number,
  step: number,
  rng: Rng,
): TrainState {
  const names = paramSpecs(lfdn).map((s) => s.name);
  const wrap = (src: LfdnParams, trainable: boolean, what: string): Map<string, tf.Variable> =>
    new Map(
      names.map((n) => {
        const x = src.get(n);
        if (x === undefined) throw new OodError('MODEL_INVALID', `checkpoint ${what} is missing ${n}`);
        const variable = tf.variable(x, trainable);
        x.dispose();
        return [n, variable] as const;
      }),
    );
  return { epoch, step, params: wrap(t.params, true, 'weights'), ema: wrap(t.ema, false, 'EMA weights'), m: wrap(t.m, false, 'Adam m'), v: wrap(t.v, false, 'Adam v'), rng };
}

export function disposeTrainState(state: TrainState): void {
  for (const group of [state.params, state.ema, state.m, state.v]) for (const x of group.values()) x.dispose();
}

export interface EpochResult {
  readonly epoch: number;
  readonly loss: number;
  readonly seconds: number;
}

/**
 * Runs one epoch over `data` (row-major [n, D] standardised features). Returns the mean loss.
 * Synchronous tensor work; callers interleave checkpoints and abort checks between epochs.
 */
export function trainEpoch(state: TrainState, lfdn: LfdnConfig, schedule: Schedule, cfg: TrainConfig, data: Float32Array, onBatch?: (done: number, total: number) => void): EpochResult {
  const d = lfdn.featureSize;
  const n = data.length / d;
  if (!Number.isInteger(n) || n < 1) throw new OodError('SHAPE_MISMATCH', `training data: expected rows of ${d} features, got ${data.length} values`);
  const started = performance.now();
  const order = state.rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const T = schedule.alphaBar.length;
  const varList = paramSpecs(lfdn).map((s) => state.params.get(s.name)!);
  let lossSum = 0;
  let batches = 0;
  for (let start = 0; start < n; start += cfg.batchSize) {
    const idx = order.slice(start, start + cfg.batchSize);
    const b = idx.length;
    const x0 = new Float32Array(b * d);
    const zt = new Float32Array(b * d);
    const ts = new Int32Array(b);
    for (let i = 0; i < b; i++) {
      const t = state.rng.int(T);
      ts[i] = t;
      const ca = Math.sqrt(schedule.alphaBar[t]!);
      const cb = Math.sqrt(1 - schedule.alphaBar[t]!);
      const row = idx[i]! * d;
      for (let j = 0; j < d; j++) {
        const v = data[row + j]!;
        x0[i * d + j] = v;
        zt[i * d + j] = ca * v + cb * state.rng.normal();
      }
    }
    state.step += 1;
    const x0t = tf.tensor2d(x0, [b, d]);
    const ztt = tf.tensor2d(zt, [b, d]);
    const { value, grads } = tf.variableGrads(() => {
      const pred = forward(state.params, lfdn, ztt, timeTable(state.params, lfdn), timestepSelector(ts, T));
      return tf.mean(tf.square(tf.sub(pred, x0t))) as tf.Scalar;
    }, varList);
    tf.dispose([x0t, ztt]);
    // One parameter at a time, so the paper-size network's update temporaries stay small.
    adamwUpdate(state, cfg, grads);
    const lossValue = value.dataSync()[0]!;
    value.dispose();
    if (!Number.isFinite(lossValue)) throw new OodError('INTERNAL', `training diverged: loss ${lossValue} at epoch ${state.epoch + 1}, step ${state.step}`);
    lossSum += lossValue;
    batches += 1;
    onBatch?.(Math.min(n, start + b), n);
  }
  state.epoch += 1;
  return { epoch: state.epoch, loss: lossSum / batches, seconds: (performance.now() - started) / 1000 };
}

function adamwUpdate(state: TrainState, cfg: TrainConfig, grads: tf.NamedTensorMap): void {
  const step = state.step;
  const bc1 = 1 - BETA1 ** step;
  const bc2 = 1 - BETA2 ** step;
  const emaDecay = Math.min(cfg.emaDecay, (1 + step) / (10 + step));
  try {
    for (const [name, param] of state.params) {
      const g = grads[param.name];
      if (g === undefined) throw new OodError('INTERNAL', `no gradient for ${name}`);
      const m = state.m.get(name)!;
      const v = state.v.get(name)!;
      const ema = state.ema.get(name)!;
      tf.tidy(() => {
        const mNew = tf.add(tf.mul(m, BETA1), tf.mul(g, 1 - BETA1));
        const vNew = tf.add(tf.mul(v, BETA2), tf.mul(tf.square(g), 1 - BETA2));
        const update = tf.div(tf.div(mNew, bc1), tf.add(tf.sqrt(tf.div(vNew, bc2)), ADAM_EPS));
        const pNew = tf.sub(tf.mul(param, 1 - cfg.lr * cfg.weightDecay), tf.mul(update, cfg.lr));
        m.assign(mNew);
        v.assign(vNew);
        param.assign(pNew);
        ema.assign(tf.add(tf.mul(ema, emaDecay), tf.mul(pNew, 1 - emaDecay)));
      });
      g.dispose();
    }
  } finally {
    tf.dispose(Object.values(grads));
  }
}

/** The EMA weights as plain tensors (copies), the network used for scoring. */
export function emaParams(state: TrainState): LfdnParams {
  return new Map([...state.ema].map(([k, v]) => [k, v.clone()] as const));
}
