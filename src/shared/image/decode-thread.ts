/**
 * The decode thread's side of decode-pool.ts: receives an image's bytes, hashes them, decodes them
 * (decode.ts, properties included when asked) and sends back the pixels and the digest. Requests
 * run concurrently: sharp's work is on libuv's pool, and this thread's event loop is free to chain
 * a decode's steps while the main thread is blocked in an encoder batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { sha256Hex } from '../hash.js';
import { decodeImage, decodeWithProperties, type DecodeOptions, type DecodeResult } from './decode.js';

export interface DecodeRequest {
  readonly id: number;
  readonly key: string;
  readonly bytes: ArrayBuffer;
  readonly options: DecodeOptions;
  readonly properties: boolean;
}

export interface DecodeReply {
  readonly id: number;
  readonly digest: string;
  readonly result: DecodeResult;
}

/** workerData marking a thread started by decode-pool.ts (so importing this module elsewhere does nothing). */
export const DECODE_THREAD_ROLE = 'ood-audit-decode';

if (parentPort !== null && (workerData as { role?: unknown } | null)?.role === DECODE_THREAD_ROLE) {
  // Every image is decoded once: libvips's operation cache only costs lookups and memory here.
  sharp.cache(false);
  const port = parentPort;
  port.on('message', (m: DecodeRequest) => {
    const bytes = new Uint8Array(m.bytes);
    const digest = sha256Hex(bytes);
    void (m.properties ? decodeWithProperties : decodeImage)(m.key, bytes, m.options)
      .catch((err: unknown): DecodeResult => ({ ok: false, key: m.key, reason: err instanceof Error ? err.message : String(err) }))
      .then((result) => {
        if (!result.ok) {
          port.postMessage({ id: m.id, digest, result } satisfies DecodeReply);
          return;
        }
        // sharp's output buffer is external memory: copy it into a transferable one (a memcpy of the pixels).
        const pixels = result.pixels.slice();
        port.postMessage({ id: m.id, digest, result: { ...result, pixels } } satisfies DecodeReply, [pixels.buffer]);
      });
  });
}
