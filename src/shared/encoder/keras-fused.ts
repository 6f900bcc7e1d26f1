/**
 * Runs a Keras inference plan (keras-plan.ts) on tfjs: every convolution is one `tf.fused.conv2d` /
 * `tf.fused.depthwiseConv2d` with its folded bias and activation. On wasm this runs about 3x faster
 * than the LayersModel (PLATFORM.md) and agrees with it to ~1e-4. The program owns its weight tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import type { KerasPlan, PlanActivation, PlanOp, PlanWeight } from './keras-plan.js';

type Padding = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

type Op =
  | { kind: 'conv' | 'depthwise'; out: string; input: string; filter: tf.Tensor4D; bias: tf.Tensor1D; strides: [number, number]; pad: Padding; activation: PlanActivation }
  | { kind: 'add'; out: string; inputs: readonly string[] }
  | { kind: 'act'; out: string; input: string; activation: PlanActivation };

export interface FusedProgram {
  readonly inputName: string;
  /** Channels of each tap, in tap order. */
  readonly tapChannels: readonly number[];
  /** Runs the program; returns the tap feature maps (caller owns them). */
  run(x: tf.Tensor4D): tf.Tensor4D[];
  dispose(): void;
}

/** Weight tensors (as tf.io.decodeWeights returns them) as plain arrays for planKeras; the caller still owns the tensors. */
export function planWeights(weights: tf.NamedTensorMap): Map<string, PlanWeight> {
  return new Map(Object.entries(weights).map(([name, t]) => [name, { shape: t.shape, data: Float32Array.from(t.dataSync()) }] as const));
}

function toTfjsOp(op: PlanOp): Op {
  if (op.kind === 'add' || op.kind === 'act') return op;
  const [kh, kw, a, b] = op.filter.shape as [number, number, number, number];
  const pad: Padding = typeof op.pad === 'string' ? op.pad : [[0, 0], [op.pad[0], op.pad[1]], [op.pad[2], op.pad[3]], [0, 0]];
  return {
    ...op,
    filter: tf.tensor4d(op.filter.data, [kh, kw, a, b]),
    bias: tf.tensor1d(op.bias),
    strides: [op.strides[0], op.strides[1]],
    pad,
  };
}

export function compileKerasFused(plan: KerasPlan): FusedProgram {
  const { inputName, tapValues } = plan;
  const ops = plan.ops.map(toTfjsOp);
  // Last op index that reads each value, so intermediates are freed as soon as possible.
  const lastUse = new Map<string, number>();
  ops.forEach((op, i) => {
    const reads = op.kind === 'add' ? op.inputs : [op.input];
    for (const r of reads) lastUse.set(r, i);
  });
  const tapValueSet = new Set(tapValues);

  return {
    inputName,
    tapChannels: plan.tapChannels,
    run(x: tf.Tensor4D): tf.Tensor4D[] {
      const values = new Map<string, tf.Tensor4D>([[inputName, x]]);
      const get = (n: string): tf.Tensor4D => {
        const v = values.get(n);
        if (v === undefined) throw new OodError('INTERNAL', `fused encoder: value ${n} not computed`);
        return v;
      };
      ops.forEach((op, i) => {
        let y: tf.Tensor4D;
        switch (op.kind) {
          case 'conv':
            y = tf.fused.conv2d({ x: get(op.input), filter: op.filter, strides: op.strides, pad: op.pad, bias: op.bias, activation: op.activation });
            break;
          case 'depthwise':
            // The typings omit explicit padding for depthwise; the kernels accept it (conv_util).
            y = tf.fused.depthwiseConv2d({ x: get(op.input), filter: op.filter, strides: op.strides, pad: op.pad as 'same', bias: op.bias, activation: op.activation });
            break;
          case 'add':
            y = op.inputs.map(get).reduce((a, b) => tf.add(a, b));
            break;
          case 'act':
            y = op.activation === 'relu6' ? tf.relu6(get(op.input)) : op.activation === 'relu' ? tf.relu(get(op.input)) : get(op.input).clone();
            break;
        }
        values.set(op.out, y);
        const reads = op.kind === 'add' ? op.inputs : [op.input];
        for (const r of reads) {
          if (lastUse.get(r) === i && !tapValueSet.has(r) && r !== inputName) {
            values.get(r)?.dispose();
            values.delete(r);
          }
        }
      });
      const outs = tapValues.map(get);
      for (const [n, v] of values) if (!tapValueSet.has(n) && n !== inputName) v.dispose();
      return outs;
    },
    dispose(): void {
      for (const op of ops) if (op.kind === 'conv' || op.kind === 'depthwise') tf.dispose([op.filter, op.bias]);
    },
  };
}
