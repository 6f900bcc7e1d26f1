/**
 * A Keras inference plan (../keras-plan.ts) as an ONNX graph (opset 13), described as plain objects
 * that proto.ts serialises. The graph takes the decoded images as they come, uint8 NHWC
 * [N, size, size, 3], and does the encoder's input normalisation itself (Cast, Div, Sub, Div, then
 * Transpose to NCHW), so the caller copies nothing. Convolutions are `Conv` (depthwise: `group` =
 * channels) with the folded bias, ReLU6 is `Clip(0, 6)`, TensorFlow's 'same' padding is
 * `auto_pad = SAME_UPPER` (odd padding at the bottom / right, as TensorFlow). Each tap is
 * GlobalAveragePool + Flatten, and one Concat gives the output `features` [N, sum of tap channels]
 * in tap order: the same layout as the tfjs encoder's.
 */
import { OodError } from '../../errors.js';
import type { Preprocessing } from '../encoder.js';
import type { KerasPlan, PlanActivation } from '../keras-plan.js';

export type AttributeValue = number | readonly number[] | string;

export interface OnnxNode {
  readonly op: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Numbers are INT attributes, number arrays INTS, strings STRING. */
  readonly attributes?: Readonly<Record<string, AttributeValue>>;
}

export interface OnnxInitializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

export interface OnnxGraph {
  readonly opset: number;
  readonly nodes: readonly OnnxNode[];
  readonly initializers: readonly OnnxInitializer[];
  /** uint8 [batch, size, size, 3]; the batch dimension is symbolic. */
  readonly input: { readonly name: string; readonly size: number };
  /** float32 [batch, channels]. */
  readonly output: { readonly name: string; readonly channels: number };
}

export const ONNX_INPUT = 'images';
export const ONNX_OUTPUT = 'features';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/** The preprocessing as x / a - b, then / c (per channel), mirroring preprocess.ts op for op. */
function normalisation(pre: Preprocessing): { a: number; b: readonly number[]; c: readonly number[] } {
  switch (pre.kind) {
    case 'symmetric':
      return { a: 127.5, b: [1, 1, 1], c: [1, 1, 1] };
    case 'unit':
      return { a: 255, b: [0, 0, 0], c: [1, 1, 1] };
    case 'imagenet':
      return { a: 255, b: IMAGENET_MEAN, c: IMAGENET_STD };
    case 'raw':
      return { a: 1, b: [0, 0, 0], c: [1, 1, 1] };
  }
}

/** Keras HWIO [kh, kw, in, out] (depthwise [kh, kw, c, 1]) -> ONNX OIHW [out, in / group, kh, kw]. */
function toOihw(data: Float32Array, shape: readonly number[], depthwise: boolean): { dims: number[]; data: Float32Array } {
  const [kh, kw, a, b] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  if (depthwise) {
    // [kh, kw, c, 1] -> [c, 1, kh, kw]
    for (let h = 0; h < kh; h++) for (let w = 0; w < kw; w++) for (let c = 0; c < a; c++) out[(c * kh + h) * kw + w] = data[(h * kw + w) * a + c]!;
    return { dims: [a, 1, kh, kw], data: out };
  }
  // [kh, kw, i, o] -> [o, i, kh, kw]
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < a; i++) for (let o = 0; o < b; o++) out[((o * a + i) * kh + h) * kw + w] = data[((h * kw + w) * a + i) * b + o]!;
  return { dims: [b, a, kh, kw], data: out };
}

export function buildOnnxGraph(plan: KerasPlan, inputSize: number, preprocessing: Preprocessing): OnnxGraph {
  const nodes: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = [];
  let counter = 0;
  const fresh = (base: string): string => `${base}__${counter++}`;
  const constant = (name: string, dims: readonly number[], values: ArrayLike<number>): string => {
    initializers.push({ name, dims, data: Float32Array.from(values) });
    return name;
  };
  const node = (op: string, inputs: readonly string[], output: string, attributes?: Record<string, AttributeValue>): string => {
    nodes.push({ op, name: fresh(op), inputs, outputs: [output], ...(attributes !== undefined ? { attributes } : {}) });
    return output;
  };
  const zero = constant('const_zero', [], [0]);
  const six = constant('const_six', [], [6]);
  const activate = (x: string, act: PlanActivation, out: string): string => {
    switch (act) {
      case 'linear':
        return node('Identity', [x], out);
      case 'relu':
        return node('Relu', [x], out);
      case 'relu6':
        return node('Clip', [x, zero, six], out);
    }
  };

  // Input normalisation, then NHWC -> NCHW.
  const { a, b, c } = normalisation(preprocessing);
  let x = node('Cast', [ONNX_INPUT], fresh('input_float'), { to: 1 });
  if (a !== 1) x = node('Div', [x, constant('pre_divisor', [], [a])], fresh('input_scaled'));
  if (b.some((v) => v !== 0)) x = node('Sub', [x, constant('pre_offset', [3], b)], fresh('input_centred'));
  if (c.some((v) => v !== 1)) x = node('Div', [x, constant('pre_std', [3], c)], fresh('input_standardised'));
  const values = new Map<string, string>([[plan.inputName, node('Transpose', [x], fresh('input_nchw'), { perm: [0, 3, 1, 2] })]]);
  const get = (n: string): string => {
    const v = values.get(n);
    if (v === undefined) throw new OodError('INTERNAL', `ONNX graph: value ${n} used before it is computed`);
    return v;
  };

  for (const op of plan.ops) {
    switch (op.kind) {
      case 'conv':
      case 'depthwise': {
        const depthwise = op.kind === 'depthwise';
        const w = toOihw(op.filter.data, op.filter.shape, depthwise);
        const weight = constant(`${op.out}/kernel`, w.dims, w.data);
        const bias = constant(`${op.out}/bias`, [op.bias.length], op.bias);
        const padding: Record<string, AttributeValue> = op.pad === 'same' ? { auto_pad: 'SAME_UPPER' } : op.pad === 'valid' ? { pads: [0, 0, 0, 0] } : { pads: [op.pad[0], op.pad[2], op.pad[1], op.pad[3]] };
        const conv = node('Conv', [get(op.input), weight, bias], op.activation === 'linear' ? op.out : fresh(`${op.out}/conv`), {
          kernel_shape: [w.dims[2]!, w.dims[3]!],
          strides: [op.strides[0], op.strides[1]],
          group: depthwise ? w.dims[0]! : 1,
          ...padding,
        });
        values.set(op.out, op.activation === 'linear' ? conv : activate(conv, op.activation, op.out));
        break;
      }
      case 'add': {
        const [first, ...rest] = op.inputs.map(get);
        if (first === undefined || rest.length === 0) throw new OodError('MODEL_INVALID', `${op.out}: an Add needs at least two inputs`);
        let sum = first;
        rest.forEach((r, i) => (sum = node('Add', [sum, r], i === rest.length - 1 ? op.out : fresh(op.out))));
        values.set(op.out, sum);
        break;
      }
      case 'act':
        values.set(op.out, activate(get(op.input), op.activation, op.out));
        break;
    }
  }

  const pooled = plan.tapValues.map((t) => node('Flatten', [node('GlobalAveragePool', [get(t)], fresh(`${t}/gap`))], fresh(`${t}/pooled`), { axis: 1 }));
  if (pooled.length === 1) node('Identity', pooled, ONNX_OUTPUT);
  else node('Concat', pooled, ONNX_OUTPUT, { axis: 1 });
  return {
    opset: 13,
    nodes,
    initializers,
    input: { name: ONNX_INPUT, size: inputSize },
    output: { name: ONNX_OUTPUT, channels: plan.tapChannels.reduce((s, ch) => s + ch, 0) },
  };
}
