/**
 * The default encoder: Keras MobileNetV2 1.0/224 with the weights bundled in `nsfwjs@4.3.0`
 * (uint8-quantised, 3.6 MB, MIT), loaded from node_modules with no network. Layers up to
 * `block_10_project_BN` keep their ImageNet weights; blocks 11-16 were fine-tuned by nsfwjs on a
 * 5-class content classifier, so taps there lean towards that domain.
 *
 * Inference runs the plan of keras-plan.ts (batch norm folded, ReLU6 fused) on onnxruntime-node
 * (onnx/encoder.ts) or as the fused tfjs program of keras-fused.ts, as the process's backend says.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import type { EncoderRuntime } from '../backend-choice.js';
import { compileKerasFused, planWeights } from './keras-fused.js';
import { planKeras, type KerasLayerConfig, type KerasPlan } from './keras-plan.js';
import { createOnnxEncoder } from './onnx/encoder.js';
import { loadOrt } from './onnx/runtime.js';
import { sha256Hex } from '../hash.js';
import { encodeInSlices, makeFingerprint, type Encoder, type Preprocessing, type StageInfo } from './encoder.js';
import { toEncoderInput } from './preprocess.js';
import { IMAGENET_STAGES } from './spec.js';

export interface MobileNetV2Options {
  readonly taps?: readonly string[];
  readonly inputSize?: number;
  readonly preprocessing?: Preprocessing;
  readonly batchSize?: number;
}

export interface BundledModel {
  readonly modelJson: { modelTopology: { model_config: { config: { layers: KerasLayerConfig[] } } }; weightsManifest: tf.io.WeightsManifestConfig };
  readonly weightData: Uint8Array;
  readonly weightsSha256: string;
}

let bundled: BundledModel | undefined;

/** Reads the nsfwjs MobileNetV2 files (a model.json object and a base64 weight shard). */
export function loadBundledMobileNetV2(): BundledModel {
  if (bundled !== undefined) return bundled;
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = path.join(path.dirname(require.resolve('nsfwjs')), '..', 'models', 'mobilenet_v2');
  } catch (err) {
    throw new OodError('NOT_FOUND', 'the nsfwjs package (MobileNetV2 weights) is not installed: run npm ci', { cause: err });
  }
  const modelJson = require(path.join(dir, 'model.min.js')) as BundledModel['modelJson'];
  const shard = require(path.join(dir, 'group1-shard1of1.min.js')) as string;
  const weightData = new Uint8Array(Buffer.from(shard, 'base64'));
  bundled = { modelJson, weightData, weightsSha256: sha256Hex(weightData) };
  return bundled;
}

export function decodeBundledWeights(model: BundledModel): tf.NamedTensorMap {
  const specs = model.modelJson.weightsManifest.flatMap((g) => g.weights);
  const buf = model.weightData.buffer.slice(model.weightData.byteOffset, model.weightData.byteOffset + model.weightData.byteLength) as ArrayBuffer;
  return tf.io.decodeWeights(buf, specs);
}

/**
 * A copy of the bundled topology with another input size and without the nsfwjs classifier head
 * (its fixed 7x7 pooling only fits 224): the convolutional trunk up to `out_relu`. Used by the
 * LayersModel parity check.
 */
export function bundledTopology(model: BundledModel, inputSize: number): unknown {
  const topo = structuredClone(model.modelJson.modelTopology) as { model_config: { config: { layers: KerasLayerConfig[]; output_layers: unknown } } };
  const cfg = topo.model_config.config;
  const last = cfg.layers.findIndex((l) => l.name === 'out_relu');
  cfg.layers = cfg.layers.slice(0, last + 1);
  cfg.output_layers = [['out_relu', 0, 0]];
  const input = cfg.layers.find((l) => l.class_name === 'InputLayer');
  if (input !== undefined) (input.config as { batch_input_shape: unknown })['batch_input_shape'] = [null, inputSize, inputSize, 3];
  return topo;
}

/**
 * The inference plan of the bundled model for `taps` (batch norms folded, weights dequantised once).
 * Both runtimes run this plan, so their features agree to float rounding.
 */
export function bundledPlan(taps: readonly string[]): KerasPlan {
  const model = loadBundledMobileNetV2();
  const weights = decodeBundledWeights(model);
  try {
    return planKeras(model.modelJson.modelTopology.model_config.config.layers, planWeights(weights), taps);
  } finally {
    tf.dispose(weights);
  }
}

/**
 * Images per tfjs run on the wasm and cpu backends: as on onnxruntime (onnx/encoder.ts), a batch of
 * 32 at 224 px runs from memory. Measured on wasm, 1 thread, CPU time per image: 18-19 ms at 32,
 * 16.4 at 8, 15.4 at 2 (a loaded machine); in bench:speed (2 x 1, alternating runs) 103.8 and 78.7
 * img/s against 82.7 and 78.5 for whole batches, and peak RSS 450 MB against 690 MB.
 */
export const TFJS_CPU_RUN_BATCH = 8;

/**
 * Loads the encoder on `runtime` (default tfjs on the active backend). Its fingerprint does not
 * depend on the runtime.
 */
export async function createMobileNetV2(options: MobileNetV2Options = {}, runtime: EncoderRuntime = { kind: 'tfjs' }): Promise<Encoder> {
  const taps = options.taps ?? IMAGENET_STAGES;
  const inputSize = options.inputSize ?? 224;
  const preprocessing = options.preprocessing ?? { kind: 'unit' };
  if (!Number.isInteger(inputSize) || inputSize < 32 || inputSize > 1024) {
    throw new OodError('CONFIG_INVALID', `invalid input size: expected an integer in [32, 1024], got ${inputSize}`);
  }
  if (taps.length === 0) throw new OodError('CONFIG_INVALID', 'invalid taps: expected at least one layer name, got none');
  const plan = bundledPlan(taps);
  const stages: StageInfo[] = taps.map((name, i) => ({ name, channels: plan.tapChannels[i]! }));
  const fingerprint = makeFingerprint({
    encoder: 'mobilenet_v2',
    weightsSha256: loadBundledMobileNetV2().weightsSha256,
    taps: [...taps],
    inputSize,
    preprocessing,
    pooling: 'gap',
  });
  const batchSize = options.batchSize ?? 32;

  if (runtime.kind === 'onnx') {
    const ort = await loadOrt();
    if (!ort.ok) throw new OodError('BACKEND_UNAVAILABLE', `onnxruntime-node could not be loaded: ${ort.reason}`);
    return createOnnxEncoder({ ort: ort.ort, ortVersion: ort.version, plan, fingerprint, stages, inputSize, preprocessing, batchSize, device: runtime.device, threads: runtime.threads, ...(runtime.runBatch !== undefined ? { runBatch: runtime.runBatch } : {}) });
  }

  const program = compileKerasFused(plan);
  // On CPU backends a batch runs in slices (see TFJS_CPU_RUN_BATCH); tfjs-node(-gpu) takes it whole.
  const runBatch = tf.getBackend() === 'wasm' || tf.getBackend() === 'cpu' ? TFJS_CPU_RUN_BATCH : batchSize;
  const featureSize = stages.reduce((s, x) => s + x.channels, 0);
  const encoder: Encoder = {
    fingerprint,
    stages,
    featureSize,
    inputSize,
    batchSize,
    runtime: `tfjs ${tf.getBackend()}`,
    async encode(images: readonly Uint8Array[]): Promise<Float32Array> {
      if (images.length === 0) return new Float32Array(0);
      return encodeInSlices(images.length, runBatch, featureSize, (from, to, write) => {
        const pooled = tf.tidy(() => {
          const x = toEncoderInput(images.slice(from, to), inputSize, preprocessing);
          const maps = program.run(x);
          return tf.concat(maps.map((m) => tf.mean(m, [1, 2])), 1);
        });
        try {
          write(pooled.dataSync() as Float32Array);
        } finally {
          pooled.dispose();
        }
      });
    },
    dispose(): void {
      program.dispose();
    },
  };
  // Warm up once so the first real batch does not pay for kernel set-up.
  await encoder.encode([new Uint8Array(inputSize * inputSize * 3)]);
  return encoder;
}
