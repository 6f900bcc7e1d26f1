/**
 * An encoder that runs a Keras inference plan on onnxruntime-node: the plan becomes an ONNX graph
 * at load time (graph.ts, proto.ts; nothing converted is stored), one session per encoder with a
 * fixed intra-op thread count, on the CPU or on CUDA. The fingerprint is the caller's: it names the
 * weights, taps, input size and preprocessing, never the runtime, so features and models move
 * freely between this encoder and the tfjs one built from the same plan.
 */
import { OodError } from '../../errors.js';
import type { Encoder, EncoderFingerprint, Preprocessing, StageInfo } from '../encoder.js';
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
}

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
      const input = new o.ort.Tensor('uint8', packed, [images.length, o.inputSize, o.inputSize, 3]);
      let output: InstanceType<OrtModule['Tensor']> | undefined;
      try {
        output = (await session.run({ [ONNX_INPUT]: input }))[ONNX_OUTPUT];
        if (output === undefined || output.type !== 'float32' || output.data.length !== images.length * featureSize) {
          throw new OodError('SHAPE_MISMATCH', `encoder output: expected float32 [${images.length}, ${featureSize}], got ${output?.type ?? 'nothing'} [${output?.dims.join(', ') ?? ''}]`);
        }
        return Float32Array.from(output.data as Float32Array);
      } finally {
        input.dispose();
        output?.dispose();
      }
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
