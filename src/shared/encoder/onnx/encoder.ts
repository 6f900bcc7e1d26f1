/**
 * An encoder that runs a Keras inference plan on onnxruntime-node: the plan becomes an ONNX graph
 * at load time (graph.ts, proto.ts; nothing converted is stored), one session per encoder with a
 * fixed intra-op thread count, on the CPU or on CUDA. The fingerprint is the caller's: it names the
 * weights, taps, input size and preprocessing, never the runtime, so features and models move
 * freely between this encoder and the tfjs one built from the same plan.
 */
import { OodError } from '../../errors.js';
import { encodeInSlices, type Encoder, type EncoderFingerprint, type Preprocessing, type StageInfo } from '../encoder.js';
import type { KerasPlan } from '../keras-plan.js';
import { buildOnnxGraph, ONNX_INPUT, ONNX_OUTPUT } from './graph.js';
import { serialiseOnnxModel } from './proto.js';
import type { OrtModule } from './runtime.js';

export type OnnxDevice = 'cpu' | 'cuda';

export interface OnnxEncoderOptions {
  readonly ort: OrtModule;
  readonly ortVersion: string;
  readonly plan: KerasPlan;
  readonly fingerprint: EncoderFingerprint;
  readonly stages: readonly StageInfo[];
  readonly inputSize: number;
  readonly preprocessing: Preprocessing;
  readonly batchSize: number;
  readonly device: OnnxDevice;
  /** Intra-op threads of the session (CPU kernels). */
  readonly threads: number;
  /** Images per session run (default: CPU_RUN_BATCH on the CPU, the whole batch on CUDA). */
  readonly runBatch?: number;
}

/**
 * Images per session run on the CPU. A batch of 32 at 224 px has activations of hundreds of MB per
 * layer and runs from memory; a few images at a time stay in cache. Measured on the 2-core machine
 * (onnxruntime-node 1.30, 1 thread, CPU time per image): 5.3 ms at 32, 4.5 at 16, 3.8-4.2 at 8,
 * 3.4-3.5 at 4, 3.2 at 2, 3.7 at 1. The extraction batch stays at batchSize; each batch is run in
 * slices of this many images, and the event loop gets a turn between them.
 */
export const CPU_RUN_BATCH = 4;

export async function createOnnxEncoder(o: OnnxEncoderOptions): Promise<Encoder> {
  const graph = buildOnnxGraph(o.plan, o.inputSize, o.preprocessing);
  const bytes = serialiseOnnxModel(graph, o.fingerprint.id);
  let session: Awaited<ReturnType<OrtModule['InferenceSession']['create']>>;
  try {
    session = await o.ort.InferenceSession.create(bytes, {
      executionProviders: o.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
      intraOpNumThreads: o.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    throw new OodError('BACKEND_UNAVAILABLE', `onnxruntime-node could not start the encoder on ${o.device}: ${msg}`, { cause: err });
  }
  const per = o.inputSize * o.inputSize * 3;
  const featureSize = graph.output.channels;
  const runtime = `onnxruntime-node ${o.ortVersion} ${o.device}${o.device === 'cpu' ? `, ${o.threads} thread${o.threads === 1 ? '' : 's'}` : ''}`;
  const runBatch = Math.max(1, Math.min(o.batchSize, o.runBatch ?? (o.device === 'cpu' ? CPU_RUN_BATCH : o.batchSize)));

  /** One session run over images [from, to) of the packed batch; its rows go to write. */
  const runSlice = async (packed: Uint8Array, from: number, to: number, write: (rows: Float32Array) => void): Promise<void> => {
    const n = to - from;
    const input = new o.ort.Tensor('uint8', packed.subarray(from * per, to * per), [n, o.inputSize, o.inputSize, 3]);
    let output: InstanceType<OrtModule['Tensor']> | undefined;
    try {
      output = (await session.run({ [ONNX_INPUT]: input }))[ONNX_OUTPUT];
      if (output === undefined || output.type !== 'float32' || output.data.length !== n * featureSize) {
        throw new OodError('SHAPE_MISMATCH', `encoder output: expected float32 [${n}, ${featureSize}], got ${output?.type ?? 'nothing'} [${output?.dims.join(', ') ?? ''}]`);
      }
      write(output.data as Float32Array);
    } finally {
      input.dispose();
      output?.dispose();
    }
  };

  const encoder: Encoder = {
    fingerprint: o.fingerprint,
    stages: o.stages,
    featureSize,
    inputSize: o.inputSize,
    batchSize: o.batchSize,
    runtime,
    async encode(images: readonly Uint8Array[]): Promise<Float32Array> {
      if (images.length === 0) return new Float32Array(0);
      const packed = new Uint8Array(images.length * per);
      images.forEach((img, i) => {
        if (img.length !== per) throw new OodError('SHAPE_MISMATCH', `image ${i} in batch: expected ${per} bytes (${o.inputSize}x${o.inputSize}x3), got ${img.length}`);
        packed.set(img, i * per);
      });
      return encodeInSlices(images.length, runBatch, featureSize, (from, to, write) => runSlice(packed, from, to, write));
    },
    dispose(): void {
      session.release().catch(() => undefined);
    },
  };
  // Warm up once so the first real batch does not pay for kernel set-up; a failed warm-up releases the session.
  try {
    await encoder.encode([new Uint8Array(per)]);
  } catch (err) {
    await session.release().catch(() => undefined);
    throw err;
  }
  return encoder;
}
