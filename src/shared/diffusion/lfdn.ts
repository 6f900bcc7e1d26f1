/**
 * The Latent Feature Diffusion Network (METHOD.md §2): an MLP denoiser over the concatenated,
 * standardised stage features that predicts z0 from (z_t, t).
 *
 *   input:      SiLU -> Linear(D -> W)
 *   time:       sinusoid(t, W) -> Linear(W -> D) -> SiLU -> Linear(D -> D)
 *   N blocks:   h = Linear(W->W)(SiLU(Norm(x))) + Linear(D->W)(SiLU(emb))
 *               h = Linear0(W->W)(SiLU(Norm(h)));  x = x + h
 *   output:     Norm -> SiLU -> Linear0(W -> D)
 *
 * Norm is GroupNorm with one group (LayerNorm over W with per-channel affine); Linear0 is
 * zero-initialised. Parameters are plain named tensors so the same forward serves the trained
 * weights, their EMA and the first-epoch checkpoint. Every matMul goes through `dense`, whose
 * gradient uses explicit transposes: wasm's transposed matMul is ~35x slower (PLATFORM.md).
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import { Rng } from '../rng.js';
import type { LfdnConfig } from './config.js';

export type LfdnParams = Map<string, tf.Tensor>;

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: 'linear' | 'zeros' | 'ones';
  /** fan-in for PyTorch's default Linear init U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
  readonly fanIn?: number;
}

/** Parameter names and shapes in a fixed order (the order of the weights file). */
export function paramSpecs(cfg: LfdnConfig): ParamSpec[] {
  const { featureSize: d, width: w, depth } = cfg;
  const lin = (name: string, fin: number, fout: number, zero = false): ParamSpec[] => [
    { name: `${name}.weight`, shape: [fin, fout], init: zero ? 'zeros' : 'linear', fanIn: fin },
    { name: `${name}.bias`, shape: [fout], init: zero ? 'zeros' : 'linear', fanIn: fin },
  ];
  const norm = (name: string): ParamSpec[] => [
    { name: `${name}.gamma`, shape: [w], init: 'ones' },
    { name: `${name}.beta`, shape: [w], init: 'zeros' },
  ];
  const specs: ParamSpec[] = [...lin('input', d, w), ...lin('time.0', w, d), ...lin('time.1', d, d)];
  for (let i = 0; i < depth; i++) {
    specs.push(...norm(`block${i}.norm1`), ...lin(`block${i}.lin1`, w, w), ...lin(`block${i}.emb`, d, w), ...norm(`block${i}.norm2`), ...lin(`block${i}.lin2`, w, w, true));
  }
  specs.push(...norm('out.norm'), ...lin('out', w, d, true));
  return specs;
}

export function validateConfig(cfg: LfdnConfig): void {
  for (const [k, v] of Object.entries(cfg)) {
    if (!Number.isInteger(v) || v < 1) throw new OodError('CONFIG_INVALID', `invalid LFDN ${k}: expected a positive integer, got ${JSON.stringify(v)}`);
  }
  if (cfg.width % 2 !== 0) throw new OodError('CONFIG_INVALID', `invalid LFDN width: expected an even number (sinusoidal embedding), got ${cfg.width}`);
}

export function initParams(cfg: LfdnConfig, seed: number): LfdnParams {
  validateConfig(cfg);
  const rng = new Rng(seed);
  const params: LfdnParams = new Map();
  for (const spec of paramSpecs(cfg)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (spec.init === 'ones') values.fill(1);
    else if (spec.init === 'linear') {
      const bound = 1 / Math.sqrt(spec.fanIn ?? 1);
      for (let i = 0; i < size; i++) values[i] = (rng.uniform() * 2 - 1) * bound;
    }
    params.set(spec.name, tf.tensor(values, [...spec.shape]));
  }
  return params;
}

export function countParams(cfg: LfdnConfig): number {
  return paramSpecs(cfg).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** x @ w with a gradient that avoids wasm's slow transposed matMul. */
export const dense = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dy as tf.Tensor2D)];
    },
  };
}) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

function p(params: LfdnParams, name: string): tf.Tensor {
  const t = params.get(name);
  if (t === undefined) throw new OodError('MODEL_INVALID', `LFDN parameter ${name} missing`);
  return t;
}

function linear(params: LfdnParams, name: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(dense(x, p(params, `${name}.weight`) as tf.Tensor2D), p(params, `${name}.bias`));
}

function silu(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(x, tf.sigmoid(x));
}

function norm(params: LfdnParams, name: string, x: tf.Tensor2D): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
  return tf.add(tf.mul(xhat, p(params, `${name}.gamma`)), p(params, `${name}.beta`));
}

/** Sinusoidal embeddings [timesteps, width] (guided-diffusion's timestep_embedding, max period 10000). */
export function sinusoidTable(timesteps: number, width: number): Float32Array {
  const half = width / 2;
  const out = new Float32Array(timesteps * width);
  for (let t = 0; t < timesteps; t++) {
    for (let i = 0; i < half; i++) {
      const freq = Math.exp((-Math.log(10000) * i) / half);
      out[t * width + i] = Math.cos(t * freq);
      out[t * width + half + i] = Math.sin(t * freq);
    }
  }
  return out;
}

/** Time embeddings for every timestep: [timesteps, D]. Differentiable in the time-MLP parameters. */
export function timeTable(params: LfdnParams, cfg: LfdnConfig): tf.Tensor2D {
  const sin = tf.tensor2d(sinusoidTable(cfg.timesteps, cfg.width), [cfg.timesteps, cfg.width]);
  return linear(params, 'time.1', silu(linear(params, 'time.0', sin)));
}

/**
 * The denoiser. `emb` is the time embedding per row ([B, D]) or shared by all rows ([1, D]); or,
 * with `select` ([B, T] one-hot rows), the embedding table of all T timesteps ([T, D]): each block's
 * embedding projection is then computed once per timestep and selected per row, which is cheaper
 * than projecting B rows when B > T (training). Returns the predicted z0, [B, D]. Call inside tf.tidy.
 */
export function forward(params: LfdnParams, cfg: LfdnConfig, x: tf.Tensor2D, emb: tf.Tensor2D, select?: tf.Tensor2D): tf.Tensor2D {
  let h = linear(params, 'input', silu(x));
  const embAct = silu(emb);
  for (let i = 0; i < cfg.depth; i++) {
    const b = `block${i}`;
    const embTerm = select === undefined ? linear(params, `${b}.emb`, embAct) : dense(select, linear(params, `${b}.emb`, embAct));
    let r: tf.Tensor2D = tf.add(linear(params, `${b}.lin1`, silu(norm(params, `${b}.norm1`, h))), embTerm);
    r = linear(params, `${b}.lin2`, silu(norm(params, `${b}.norm2`, r)));
    h = tf.add(h, r);
  }
  return linear(params, 'out', silu(norm(params, 'out.norm', h)));
}

/** One-hot rows [B, T] selecting each sample's timestep (gather has no gradient on wasm). */
export function timestepSelector(t: Int32Array, timesteps: number): tf.Tensor2D {
  return tf.oneHot(tf.tensor1d(t, 'int32'), timesteps).toFloat() as tf.Tensor2D;
}

export function disposeParams(params: LfdnParams): void {
  for (const t of params.values()) t.dispose();
  params.clear();
}

export function cloneParams(params: LfdnParams): LfdnParams {
  return new Map([...params].map(([k, v]) => [k, v.clone()] as const));
}
