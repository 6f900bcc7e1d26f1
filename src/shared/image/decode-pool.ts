/**
 * Decoding off the main thread. An encoder batch blocks the thread it runs on (onnxruntime-node's
 * run is synchronous under its Promise; tfjs wasm kernels are too), and a sharp decode is a chain of
 * steps (metadata, then the pixel pipeline) whose hops need the calling thread's event loop: on the
 * main thread a batch's decodes stall for the whole encode of the previous one. In a thread of its
 * own (decode-thread.ts) the chain completes while the main thread encodes; the bytes go to the
 * thread and the pixels come back as transferred buffers, and the thread hashes the bytes too.
 *
 * One thread per process is enough: sharp's work itself runs on libuv's pool, shared by every
 * thread; the decode thread only drives it. The thread is referenced only while a decode is pending,
 * so an idle pool never keeps a process alive. A thread that dies fails every pending and later
 * decode with one line naming the reason (the job fails and is retried), and the next pool starts a
 * new thread.
 */
import 'sharp'; // sharp must be loaded by the main thread before any worker thread loads it (sharp's docs).
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { OodError } from '../errors.js';
import type { DecodeOptions, DecodeResult } from './decode.js';
import { DECODE_THREAD_ROLE, type DecodeReply, type DecodeRequest } from './decode-thread.js';

export interface DecodedBytes {
  readonly digest: string;
  readonly result: DecodeResult;
}

/**
 * How to start the thread: the compiled decode-thread.js beside this file, or, when running from the
 * TypeScript sources (tsx, vitest), a bootstrap that registers tsx's loader in the thread first
 * (Node 20 does not apply `--import` hooks to a worker's entry module).
 */
function threadEntry(): { readonly entry: URL | string; readonly evaluate: boolean } {
  const here = import.meta.url;
  if (!/\.ts$/.test(here)) return { entry: new URL('./decode-thread.js', here), evaluate: false };
  const tsxDir = path.dirname(createRequire(here).resolve('tsx/package.json'));
  const api = pathToFileURL(path.join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const source = new URL('./decode-thread.ts', here).href;
  return { entry: `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`, evaluate: true };
}

export class DecodePool {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: DecodedBytes) => void; reject: (e: Error) => void }>();
  private next = 0;
  private deadError: OodError | undefined;

  constructor() {
    const start = threadEntry();
    this.worker = new Worker(start.entry, { eval: start.evaluate, workerData: { role: DECODE_THREAD_ROLE } });
    this.worker.unref();
    this.worker.on('message', (r: DecodeReply) => {
      const p = this.pending.get(r.id);
      if (p === undefined) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) this.worker.unref();
      p.resolve({ digest: r.digest, result: r.result });
    });
    const die = (why: string): void => {
      this.deadError ??= new OodError('BACKEND_UNAVAILABLE', `image decode thread ${why}`);
      for (const p of this.pending.values()) p.reject(this.deadError);
      this.pending.clear();
    };
    this.worker.on('error', (err: Error) => die(`failed: ${err.message.split('\n')[0] ?? ''}`));
    this.worker.on('exit', (code) => die(`exited (code ${code})`));
  }

  get dead(): boolean {
    return this.deadError !== undefined;
  }

  /**
   * Hashes and decodes one image's bytes in the thread. The thread gets a copy (a read may hand out
   * a buffer it shares, e.g. from a cache), so the caller's bytes stay usable.
   */
  decode(key: string, bytes: Uint8Array, options: DecodeOptions, properties: boolean): Promise<DecodedBytes> {
    if (this.deadError !== undefined) return Promise.reject(this.deadError);
    const id = this.next++;
    const buffer = bytes.slice().buffer;
    const request: DecodeRequest = { id, key, bytes: buffer, options, properties };
    return new Promise<DecodedBytes>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(request, [buffer]);
    });
  }

  async close(): Promise<void> {
    this.deadError ??= new OodError('BACKEND_UNAVAILABLE', 'image decode thread closed');
    await this.worker.terminate();
  }
}

let shared: DecodePool | undefined;

/** The process's decode thread, started on first use (and again after one died). */
export function sharedDecodePool(): DecodePool {
  if (shared === undefined || shared.dead) shared = new DecodePool();
  return shared;
}
