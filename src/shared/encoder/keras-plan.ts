/**
 * Turns a Keras functional model (the `model_config` of a tfjs LayersModel) and its weights into a
 * runtime-neutral inference plan: batch norms folded into the preceding convolution's weights, ReLU /
 * ReLU6 attached to the convolution, ZeroPadding2D turned into the convolution's explicit padding,
 * and only the layers needed by the requested taps kept. The plan holds plain Float32Arrays in the
 * Keras layout (HWIO, depthwise HWC1); the tfjs program (keras-fused.ts) and the ONNX graph
 * (onnx/graph.ts) are both built from it, so the two runtimes run the same folded weights.
 *
 * Supported layers: InputLayer, ZeroPadding2D, Conv2D, DepthwiseConv2D, BatchNormalization, ReLU,
 * Activation(relu|relu6|linear), Add. Anything else on the path to a tap is refused with a named error.
 */
import { OodError } from '../errors.js';

export interface KerasLayerConfig {
  readonly name: string;
  readonly class_name: string;
  readonly config: Record<string, unknown>;
  readonly inbound_nodes: unknown[];
}

/** A weight as stored in the weights file: shape and float values (row-major). */
export interface PlanWeight {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** 'same' is TensorFlow's: any odd padding goes at the bottom / right. Explicit is [top, bottom, left, right]. */
export type PlanPadding = 'same' | 'valid' | readonly [number, number, number, number];
export type PlanActivation = 'linear' | 'relu' | 'relu6';

export type PlanOp =
  | {
      readonly kind: 'conv' | 'depthwise';
      readonly out: string;
      readonly input: string;
      /** Conv: [kh, kw, in, out]; depthwise: [kh, kw, channels, 1]. */
      readonly filter: PlanWeight;
      /** [out channels]. */
      readonly bias: Float32Array;
      readonly strides: readonly [number, number];
      readonly pad: PlanPadding;
      readonly activation: PlanActivation;
    }
  | { readonly kind: 'add'; readonly out: string; readonly inputs: readonly string[] }
  | { readonly kind: 'act'; readonly out: string; readonly input: string; readonly activation: PlanActivation };

export interface KerasPlan {
  /** Name of the input value (the InputLayer). */
  readonly inputName: string;
  /** Operations in execution order; each writes the value `out`. */
  readonly ops: readonly PlanOp[];
  /** Value name holding each tap, in tap order. */
  readonly tapValues: readonly string[];
  /** Channels of each tap, in tap order. */
  readonly tapChannels: readonly number[];
}

function inboundNames(layer: KerasLayerConfig): string[] {
  const nodes = layer.inbound_nodes;
  if (nodes.length === 0) return [];
  if (nodes.length > 1) throw new OodError('MODEL_INVALID', `layer ${layer.name} is shared (called ${nodes.length} times); not supported`);
  const node = nodes[0];
  if (Array.isArray(node)) return node.map((entry) => String((entry as unknown[])[0]));
  // Keras 3 style: { args: [...], kwargs }
  const args = (node as { args?: unknown[] }).args ?? [];
  const names: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') {
      const hist = (v as { config?: { keras_history?: unknown[] } }).config?.keras_history;
      if (Array.isArray(hist)) names.push(String(hist[0]));
    }
  };
  visit(args);
  return names;
}

function activationOf(layer: KerasLayerConfig): PlanActivation | undefined {
  const c = layer.config;
  if (layer.class_name === 'ReLU') {
    const max = c['max_value'];
    if ((c['negative_slope'] ?? 0) !== 0 || (c['threshold'] ?? 0) !== 0) return undefined;
    if (max === 6) return 'relu6';
    if (max === null || max === undefined) return 'relu';
    return undefined;
  }
  if (layer.class_name === 'Activation') {
    const a = c['activation'];
    if (a === 'relu' || a === 'relu6' || a === 'linear') return a;
  }
  return undefined;
}

function getWeight(weights: ReadonlyMap<string, PlanWeight>, name: string, length?: number): PlanWeight {
  const w = weights.get(name);
  if (w === undefined) throw new OodError('MODEL_INVALID', `weight ${name} missing from the weights file`);
  if (length !== undefined && w.data.length !== length) throw new OodError('MODEL_INVALID', `weight ${name}: expected ${length} values, got ${w.data.length}`);
  return w;
}

function pair(v: unknown, what: string): [number, number] {
  if (Array.isArray(v) && v.length === 2) return [Number(v[0]), Number(v[1])];
  if (typeof v === 'number') return [v, v];
  throw new OodError('MODEL_INVALID', `expected a pair for ${what}, got ${JSON.stringify(v)}`);
}

/**
 * Folds `scale = gamma / sqrt(variance + eps)` into the kernel (per output channel, the last axis of
 * both layouts) and the bias (`(bias - mean) * scale + beta`), in double precision, rounded once.
 */
function foldBatchNorm(kernel: PlanWeight, bias: Float32Array, bn: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array; eps: number }): { kernel: PlanWeight; bias: Float32Array } {
  const c = bias.length;
  const scale = new Float64Array(c);
  for (let j = 0; j < c; j++) scale[j] = bn.gamma[j]! / Math.sqrt(bn.variance[j]! + bn.eps);
  const k = new Float32Array(kernel.data.length);
  for (let i = 0; i < k.length; i++) k[i] = kernel.data[i]! * scale[i % c]!;
  const b = new Float32Array(c);
  for (let j = 0; j < c; j++) b[j] = (bias[j]! - bn.mean[j]!) * scale[j]! + bn.beta[j]!;
  return { kernel: { shape: kernel.shape, data: k }, bias: b };
}

/** Builds the plan. `weights` are the LayersModel weights by name (`<layer>/<weight>`); they are not modified. */
export function planKeras(layers: readonly KerasLayerConfig[], weights: ReadonlyMap<string, PlanWeight>, taps: readonly string[]): KerasPlan {
  const byName = new Map(layers.map((l) => [l.name, l] as const));
  const inputs = new Map(layers.map((l) => [l.name, inboundNames(l)] as const));
  const consumers = new Map<string, string[]>();
  for (const l of layers) for (const src of inputs.get(l.name) ?? []) consumers.set(src, [...(consumers.get(src) ?? []), l.name]);
  for (const t of taps) if (!byName.has(t)) throw new OodError('CONFIG_INVALID', `invalid tap: no layer named ${JSON.stringify(t)} in the encoder`);

  // Layers needed by the taps.
  const needed = new Set<string>();
  const stack = [...taps];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (needed.has(n)) continue;
    needed.add(n);
    stack.push(...(inputs.get(n) ?? []));
  }
  const tapSet = new Set(taps);
  const soleConsumer = (name: string): KerasLayerConfig | undefined => {
    const cs = (consumers.get(name) ?? []).filter((c) => needed.has(c));
    return cs.length === 1 && !tapSet.has(name) ? byName.get(cs[0]!) : undefined;
  };

  const ops: PlanOp[] = [];
  const alias = new Map<string, string>(); // layer name -> value name that holds its output
  const resolve = (n: string): string => alias.get(n) ?? n;
  const skip = new Set<string>();
  let inputName = '';

  for (const layer of layers) {
    if (!needed.has(layer.name) || skip.has(layer.name)) continue;
    const ins = inputs.get(layer.name) ?? [];
    const c = layer.config;
    switch (layer.class_name) {
      case 'InputLayer':
        inputName = layer.name;
        break;
      case 'ZeroPadding2D': {
        const next = soleConsumer(layer.name);
        const isConv = next !== undefined && (next.class_name === 'Conv2D' || next.class_name === 'DepthwiseConv2D') && next.config['padding'] === 'valid';
        if (!isConv) throw new OodError('MODEL_INVALID', `ZeroPadding2D ${layer.name} is only supported before a 'valid' convolution`);
        alias.set(layer.name, resolve(ins[0]!));
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const depthwise = layer.class_name === 'DepthwiseConv2D';
        if (depthwise && (c['depth_multiplier'] ?? 1) !== 1) throw new OodError('MODEL_INVALID', `${layer.name}: depth_multiplier != 1 not supported`);
        if (pair(c['dilation_rate'] ?? 1, 'dilation_rate').some((d) => d !== 1)) throw new OodError('MODEL_INVALID', `${layer.name}: dilation not supported`);
        let pad: PlanPadding = c['padding'] === 'same' ? 'same' : 'valid';
        let inputNameForConv = resolve(ins[0]!);
        const src = byName.get(ins[0]!);
        if (src?.class_name === 'ZeroPadding2D') {
          const p = src.config['padding'] as unknown;
          const [[t, b], [l, r]] = Array.isArray(p) && Array.isArray(p[0]) ? (p as [[number, number], [number, number]]) : [pair(p, 'padding'), pair(p, 'padding')];
          pad = [t, b, l, r];
          inputNameForConv = resolve(inboundNames(src)[0]!);
        }
        let kernel = getWeight(weights, `${layer.name}/${depthwise ? 'depthwise_kernel' : 'kernel'}`);
        if (kernel.shape.length !== 4) throw new OodError('MODEL_INVALID', `${layer.name}: expected a rank-4 kernel, got shape [${kernel.shape.join(', ')}]`);
        const outChannels = depthwise ? kernel.shape[2]! : kernel.shape[3]!;
        let bias = c['use_bias'] === true ? getWeight(weights, `${layer.name}/bias`, outChannels).data : new Float32Array(outChannels);
        let outName = layer.name;
        let activation: PlanActivation;
        if (c['activation'] === 'relu') activation = 'relu';
        else if (c['activation'] === 'linear' || c['activation'] === undefined) activation = 'linear';
        else throw new OodError('MODEL_INVALID', `${layer.name}: activation ${String(c['activation'])} not supported`);
        // Fold a following BatchNormalization.
        const bnLayer = activation === 'linear' ? soleConsumer(layer.name) : undefined;
        if (bnLayer?.class_name === 'BatchNormalization') {
          const bc = bnLayer.config;
          const folded = foldBatchNorm(kernel, bias, {
            gamma: bc['scale'] === false ? new Float32Array(outChannels).fill(1) : getWeight(weights, `${bnLayer.name}/gamma`, outChannels).data,
            beta: bc['center'] === false ? new Float32Array(outChannels) : getWeight(weights, `${bnLayer.name}/beta`, outChannels).data,
            mean: getWeight(weights, `${bnLayer.name}/moving_mean`, outChannels).data,
            variance: getWeight(weights, `${bnLayer.name}/moving_variance`, outChannels).data,
            eps: Number(bc['epsilon'] ?? 1e-3),
          });
          kernel = folded.kernel;
          bias = folded.bias;
          skip.add(bnLayer.name);
          outName = bnLayer.name;
          const actLayer = soleConsumer(bnLayer.name);
          const act = actLayer === undefined ? undefined : activationOf(actLayer);
          if (actLayer !== undefined && act !== undefined) {
            activation = act;
            skip.add(actLayer.name);
            outName = actLayer.name;
          }
        }
        const strides = pair(c['strides'] ?? 1, 'strides');
        ops.push({ kind: depthwise ? 'depthwise' : 'conv', out: outName, input: inputNameForConv, filter: kernel, bias, strides, pad, activation });
        for (const n of [layer.name, outName]) alias.set(n, outName);
        if (bnLayer?.class_name === 'BatchNormalization') alias.set(bnLayer.name, outName);
        break;
      }
      case 'Add':
        ops.push({ kind: 'add', out: layer.name, inputs: ins.map(resolve) });
        break;
      case 'ReLU':
      case 'Activation': {
        const act = activationOf(layer);
        if (act === undefined) throw new OodError('MODEL_INVALID', `${layer.name}: unsupported activation config`);
        ops.push({ kind: 'act', out: layer.name, input: resolve(ins[0]!), activation: act });
        break;
      }
      case 'BatchNormalization':
        throw new OodError('MODEL_INVALID', `${layer.name}: a batch norm not directly after a convolution is not supported`);
      default:
        throw new OodError('MODEL_INVALID', `layer ${layer.name} of class ${layer.class_name} is not supported by the fused encoder`);
    }
  }
  if (inputName === '') throw new OodError('MODEL_INVALID', 'the model has no InputLayer');

  const tapValues = taps.map(resolve);
  const tapChannels = taps.map((t) => {
    const op = ops.find((o) => o.out === resolve(t));
    if (op === undefined) throw new OodError('CONFIG_INVALID', `invalid tap ${t}: it is the input layer`);
    return outChannelsOf(op, ops);
  });
  return { inputName, ops, tapValues, tapChannels };
}

function outChannelsOf(op: PlanOp, ops: readonly PlanOp[]): number {
  switch (op.kind) {
    case 'conv':
      return op.filter.shape[3]!;
    case 'depthwise':
      return op.filter.shape[2]!;
    case 'add':
    case 'act': {
      const first = op.kind === 'add' ? op.inputs[0] : op.input;
      const src = ops.find((o) => o.out === first);
      if (src === undefined) throw new OodError('MODEL_INVALID', `cannot infer channels of ${op.out}`);
      return outChannelsOf(src, ops);
    }
  }
}
