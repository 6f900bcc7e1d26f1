/**
 * The binary framing of every ood-audit binary artifact (feature sets, tensor bundles, training
 * checkpoints): one object, so it is written atomically, that carries its own description.
 *
 *   magic (8 ASCII bytes) | uint32 LE header length | header JSON (UTF-8) | zero pad to 4 bytes | body
 *
 * The body starts 4-byte aligned so float32 data can be viewed without copying. Decoding checks the
 * magic and the lengths and names the source in every error.
 */
import { OodError } from './errors.js';

const MAGIC_BYTES = 8;
const PREFIX_BYTES = MAGIC_BYTES + 4;

export function encodeFrame(magic: string, header: unknown, body: Uint8Array): Uint8Array {
  if (magic.length !== MAGIC_BYTES) throw new OodError('INTERNAL', `frame magic must be ${MAGIC_BYTES} characters, got ${JSON.stringify(magic)}`);
  const head = new TextEncoder().encode(JSON.stringify(header));
  const bodyStart = Math.ceil((PREFIX_BYTES + head.length) / 4) * 4;
  const out = new Uint8Array(bodyStart + body.byteLength);
  out.set(new TextEncoder().encode(magic), 0);
  new DataView(out.buffer).setUint32(MAGIC_BYTES, head.length, true);
  out.set(head, PREFIX_BYTES);
  out.set(body, bodyStart);
  return out;
}

export interface Frame {
  /** The parsed header JSON (untyped: validate it before use). */
  readonly header: unknown;
  /** The body, a view into the input bytes. */
  readonly body: Uint8Array;
}

/** Splits a frame; `what` names the artifact kind in errors ("an ood-audit feature set"). */
export function decodeFrame(bytes: Uint8Array, magic: string, source: string, what: string): Frame {
  if (bytes.length < PREFIX_BYTES || new TextDecoder().decode(bytes.subarray(0, MAGIC_BYTES)) !== magic) {
    throw new OodError('MODEL_INVALID', `${source}: not ${what} (bad magic)`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC_BYTES, true);
  if (PREFIX_BYTES + headerLength > bytes.length) throw new OodError('MODEL_INVALID', `${source}: truncated header`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength)));
  } catch (err) {
    throw new OodError('MODEL_INVALID', `${source}: header is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const bodyStart = Math.ceil((PREFIX_BYTES + headerLength) / 4) * 4;
  return { header, body: bytes.subarray(Math.min(bodyStart, bytes.length)) };
}
