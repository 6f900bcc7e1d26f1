/**
 * Any tfjs LayersModel or GraphModel as an encoder: loaded from a model.json and its weight files
 * (through a `read` function, so a local folder or object storage both work), tapped at named layers
 * (LayersModel) or graph nodes (GraphModel), each tap globally average-pooled. A LayersModel whose
 * layers the fused compiler supports (MobileNet-style conv nets) runs fused; others run as-is.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { OodError } from '../errors.js';
import { joinUri } from '../storage/locate.js';
import { issueText, JSON_GET, parseJson, type GetOptions } from '../storage/object-store.js';
import { compileKerasFused, planWeights, type FusedProgram } from './keras-fused.js';
import { planKeras, type KerasLayerConfig } from './keras-plan.js';
import { sha256Hex } from '../hash.js';
import { makeFingerprint, type Encoder, type Preprocessing, type StageInfo } from './encoder.js';
import { toEncoderInput } from './preprocess.js';
import { concatBytes } from '../typed-arrays.js';

export interface TfjsModelSpec {
  readonly kind: 'layers' | 'graph';
  /** Location of model.json, for messages and the fingerprint. */
  readonly uri: string;
  readonly taps: readonly string[];
  readonly inputSize: number;
  readonly preprocessing: Preprocessing;
  readonly batchSize?: number;
}

/** Reads a path relative to the model.json's folder (with the store's read options: a size cap). */
export type ModelFileReader = (relativePath: string, options?: GetOptions) => Promise<Uint8Array>;

/** What is read of a model.json before tfjs sees it (the rest is tfjs's to check). */
const modelJsonShape = z.looseObject({
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z.array(z.looseObject({ paths: z.array(z.string().min(1)), weights: z.array(z.looseObject({ name: z.string(), shape: z.array(z.number().int().min(0)), dtype: z.string() })) })).optional(),
});

async function loadArtifacts(read: ModelFileReader, uri: string): Promise<{ artifacts: tf.io.ModelArtifacts; weightsHash: string }> {
  const where = joinUri(uri, 'model.json');
  const raw = parseJson<unknown>(await read('model.json', JSON_GET), where);
  const shape = modelJsonShape.safeParse(raw);
  if (!shape.success) throw new OodError('MODEL_INVALID', `${where}: not a tfjs model.json (${issueText(shape.error)})`);
  const json = raw as tf.io.ModelJSON;
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of json.weightsManifest ?? []) {
    specs.push(...group.weights);
    for (const p of group.paths) parts.push(await read(p));
  }
  const weightData = concatBytes(parts);
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs: specs,
    weightData: weightData.buffer,
    ...(json.signature !== undefined ? { signature: json.signature } : {}),
    ...(json.userDefinedMetadata !== undefined ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
  };
  return { artifacts, weightsHash: sha256Hex(weightData) };
}

/** The layers of a functional Keras model (Sequential models have no inbound nodes: not fusable). */
function kerasLayers(topology: unknown): KerasLayerConfig[] | undefined {
  const t = topology as { model_config?: { config?: { layers?: KerasLayerConfig[] } }; config?: { layers?: KerasLayerConfig[] } } | undefined;
  const layers = t?.model_config?.config?.layers ?? t?.config?.layers;
  return Array.isArray(layers) && layers.every((l) => Array.isArray(l.inbound_nodes)) ? layers : undefined;
}

export async function createTfjsModelEncoder(spec: TfjsModelSpec, read: ModelFileReader): Promise<Encoder> {
  if (spec.taps.length === 0) throw new OodError('CONFIG_INVALID', `invalid taps for ${spec.uri}: expected at least one ${spec.kind === 'layers' ? 'layer' : 'node'} name`);
  const { artifacts, weightsHash } = await loadArtifacts(read, spec.uri);
  const handler = tf.io.fromMemory(artifacts);
  let run: (x: tf.Tensor4D) => tf.Tensor[];
  let release: () => void;
  let fused: FusedProgram | undefined;

  if (spec.kind === 'layers') {
    const layers = kerasLayers(artifacts.modelTopology);
    if (layers !== undefined) {
      try {
        const weights = tf.io.decodeWeights(artifacts.weightData as ArrayBuffer, artifacts.weightSpecs ?? []);
        try {
          fused = compileKerasFused(planKeras(layers, planWeights(weights), spec.taps));
        } finally {
          tf.dispose(weights);
        }
      } catch (err) {
        if (!(err instanceof OodError) || err.code !== 'MODEL_INVALID') throw err;
        fused = undefined; // unsupported layer: fall back to the LayersModel
      }
    }
    if (fused !== undefined) {
      const program = fused;
      run = (x) => program.run(x);
      release = () => program.dispose();
    } else {
      const model = await tf.loadLayersModel(handler);
      const outputs = spec.taps.map((name) => {
        try {
          return model.getLayer(name).output as tf.SymbolicTensor;
        } catch {
          throw new OodError('CONFIG_INVALID', `invalid tap: no layer named ${JSON.stringify(name)} in ${spec.uri}`);
        }
      });
      const sub = tf.model({ inputs: model.inputs, outputs });
      run = (x) => {
        const y = sub.predict(x);
        return Array.isArray(y) ? y : [y];
      };
      release = () => model.dispose();
    }
  } else {
    const model = await tf.loadGraphModel(handler);
    run = (x) => {
      const y = model.execute(x, [...spec.taps]);
      return Array.isArray(y) ? y : [y];
    };
    release = () => model.dispose();
  }

  const pool = (t: tf.Tensor): tf.Tensor2D => {
    if (t.rank === 4) return tf.mean(t, [1, 2]) as tf.Tensor2D;
    if (t.rank === 2) return t as tf.Tensor2D;
    throw new OodError('SHAPE_MISMATCH', `tap output of rank ${t.rank}: expected NHWC (rank 4) or pooled (rank 2)`);
  };
  // Probe the tap widths with one blank image.
  const widths = tf.tidy(() => run(toEncoderInput([new Uint8Array(spec.inputSize * spec.inputSize * 3)], spec.inputSize, spec.preprocessing)).map((t) => pool(t).shape[1]));
  const stages: StageInfo[] = spec.taps.map((name, i) => ({ name, channels: widths[i]! }));
  const fingerprint = makeFingerprint({
    encoder: `tfjs-${spec.kind}-model`,
    weightsSha256: weightsHash,
    taps: [...spec.taps],
    inputSize: spec.inputSize,
    preprocessing: spec.preprocessing,
    pooling: 'gap',
  });
  return {
    fingerprint,
    stages,
    featureSize: widths.reduce((a, b) => a + b, 0),
    inputSize: spec.inputSize,
    batchSize: spec.batchSize ?? 32,
    runtime: `tfjs ${tf.getBackend()}`,
    async encode(images: readonly Uint8Array[]): Promise<Float32Array> {
      if (images.length === 0) return new Float32Array(0);
      const out = tf.tidy(() => tf.concat(run(toEncoderInput(images, spec.inputSize, spec.preprocessing)).map(pool), 1));
      try {
        return out.dataSync() as Float32Array;
      } finally {
        out.dispose();
      }
    },
    dispose(): void {
      release();
    },
  };
}
