/**
 * Named float tensors in tfjs weights format (`tf.io.encodeWeights` specs + one little-endian data
 * buffer), optionally wrapped with a JSON header into one binary object so checkpoints are written
 * atomically: "OODTENS1" | uint32 header length | header JSON | pad to 4 | weight data.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';

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
  const head = new TextEncoder().encode(JSON.stringify({ ...header, weightSpecs: w.specs }));
  const dataStart = Math.ceil((12 + head.length) / 4) * 4;
  const out = new Uint8Array(dataStart + w.data.length);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, head.length, true);
  out.set(head, 12);
  out.set(w.data, dataStart);
  return out;
}

export function decodeBundle<H>(bytes: Uint8Array, source: string): { header: H; tensors: Map<string, tf.Tensor> } {
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new OodError('MODEL_INVALID', `${source}: not an ood-audit tensor bundle (bad magic)`);
  }
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + len > bytes.length) throw new OodError('MODEL_INVALID', `${source}: truncated header`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + len))) as H & { weightSpecs: tf.io.WeightsManifestEntry[] };
  const dataStart = Math.ceil((12 + len) / 4) * 4;
  const expected = header.weightSpecs.reduce((s, spec) => s + 4 * spec.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes.length - dataStart !== expected) throw new OodError('MODEL_INVALID', `${source}: expected ${expected} bytes of weights, got ${bytes.length - dataStart}`);
  const tensors = decodeWeights({ specs: header.weightSpecs, data: bytes.subarray(dataStart) });
  return { header, tensors };
}
