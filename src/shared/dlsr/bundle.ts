/**
 * Named float tensors in tfjs weights format (`tf.io.encodeWeights` specs + one little-endian data
 * buffer), optionally wrapped with a JSON header into one binary frame (binary-frame.ts, magic
 * "OODTENS1") so checkpoints are written atomically.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import { decodeFrame, encodeFrame } from '../binary-frame.js';

const MAGIC = 'OODTENS1';

export interface EncodedWeights {
  readonly specs: tf.io.WeightsManifestEntry[];
  readonly data: Uint8Array;
}

export async function encodeWeights(tensors: ReadonlyMap<string, tf.Tensor>): Promise<EncodedWeights> {
  const named: tf.NamedTensorMap = Object.fromEntries(tensors);
  const { data, specs } = await tf.io.encodeWeights(named);
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(await new Blob(data as ArrayBuffer[]).arrayBuffer());
  return { specs, data: bytes };
}

export function decodeWeights(w: EncodedWeights): Map<string, tf.Tensor> {
  const buf = w.data.buffer.slice(w.data.byteOffset, w.data.byteOffset + w.data.byteLength) as ArrayBuffer;
  return new Map(Object.entries(tf.io.decodeWeights(buf, w.specs)));
}

export async function encodeBundle(header: Record<string, unknown>, tensors: ReadonlyMap<string, tf.Tensor>): Promise<Uint8Array> {
  const w = await encodeWeights(tensors);
  return encodeFrame(MAGIC, { ...header, weightSpecs: w.specs }, w.data);
}

export function decodeBundle<H>(bytes: Uint8Array, source: string): { header: H; tensors: Map<string, tf.Tensor> } {
  const { header: raw, body } = decodeFrame(bytes, MAGIC, source, 'an ood-audit tensor bundle');
  const header = raw as H & { weightSpecs: tf.io.WeightsManifestEntry[] };
  const expected = header.weightSpecs.reduce((s, spec) => s + 4 * spec.shape.reduce((a, b) => a * b, 1), 0);
  if (body.length !== expected) throw new OodError('MODEL_INVALID', `${source}: expected ${expected} bytes of weights, got ${body.length}`);
  const tensors = decodeWeights({ specs: header.weightSpecs, data: body });
  return { header, tensors };
}
