/**
 * An onnxruntime-node session in a worker thread. onnxruntime-node's `session.run` is synchronous
 * underneath its Promise (microsoft/onnxruntime#19611, #26968): on the main thread it blocks the event
 * loop for a whole batch, so object-store reads and sharp's decode callbacks of the next batch wait
 * for it. In a thread of its own the session runs while the main thread keeps reading and decoding.
 *
 * The thread's code is a small CommonJS script (no TypeScript, no project imports), so it runs the same
 * under node, tsx and vitest; it loads onnxruntime-node from the path the main thread resolved.
 * Pixels go to the thread and features come back as transferred buffers (no copies). A thread that
 * dies fails every pending and later call with one line naming the reason.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { OodError } from '../../errors.js';

const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session;
const firstLine = (e) => String((e && e.message) || e).split('\\n')[0];
parentPort.on('message', async (m) => {
  try {
    if (m.type === 'create') {
      session = await ort.InferenceSession.create(new Uint8Array(m.model), m.options);
      parentPort.postMessage({ id: m.id, ok: true });
    } else if (m.type === 'run') {
      const input = new ort.Tensor('uint8', new Uint8Array(m.pixels), m.dims);
      let t;
      try {
        t = (await session.run({ [m.input]: input }))[m.output];
        if (t === undefined || t.type !== 'float32') throw new Error('no float32 output ' + m.output + ' (got ' + (t ? t.type : 'nothing') + ')');
        const data = Float32Array.from(t.data);
        parentPort.postMessage({ id: m.id, ok: true, data, dims: Array.from(t.dims) }, [data.buffer]);
      } finally {
        input.dispose();
        if (t !== undefined) t.dispose();
      }
    } else if (m.type === 'release') {
      if (session !== undefined) await session.release();
      session = undefined;
      parentPort.postMessage({ id: m.id, ok: true });
    }
  } catch (e) {
    parentPort.postMessage({ id: m.id, ok: false, error: firstLine(e) });
  }
});
`;

/** The session options passed to InferenceSession.create (structured-cloneable). */
export interface ThreadSessionOptions {
  readonly executionProviders: readonly string[];
  readonly intraOpNumThreads: number;
  readonly interOpNumThreads: number;
  readonly executionMode: 'sequential' | 'parallel';
  readonly graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
}

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly data?: Float32Array;
  readonly dims?: number[];
}

export class SessionThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private next = 0;
  private dead: Error | undefined;

  private constructor(ortPath: string) {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { ortPath } });
    // Referenced only while a call is pending: an idle encoder (or a forgotten dispose) never keeps
    // the process alive, and a pending call always does.
    this.worker.unref();
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (p === undefined) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) this.worker.unref();
      if (r.ok) p.resolve(r);
      else p.reject(new OodError('BACKEND_UNAVAILABLE', `onnxruntime-node: ${r.error ?? 'failed'}`));
    });
    const die = (why: string): void => {
      this.dead ??= new OodError('BACKEND_UNAVAILABLE', `onnxruntime-node encoder thread ${why}`);
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    this.worker.on('error', (err: Error) => die(`failed: ${err.message.split('\n')[0]}`));
    this.worker.on('exit', (code) => die(`exited (code ${code})`));
  }

  /** Starts a thread and creates the session of `model` (ONNX bytes) in it. */
  static async start(model: Uint8Array, options: ThreadSessionOptions): Promise<SessionThread> {
    const t = new SessionThread(createRequire(import.meta.url).resolve('onnxruntime-node'));
    try {
      const copy = model.slice();
      await t.call({ type: 'create', model: copy.buffer, options }, [copy.buffer]);
    } catch (err) {
      await t.close();
      throw err;
    }
    return t;
  }

  /** Runs the session on uint8 pixels [dims]; returns the float32 output and its dims. */
  async run(pixels: Uint8Array, dims: readonly number[], input: string, output: string): Promise<{ data: Float32Array; dims: number[] }> {
    const buf = pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength ? pixels : pixels.slice();
    const r = await this.call({ type: 'run', pixels: buf.buffer, dims: [...dims], input, output }, [buf.buffer as ArrayBuffer]);
    return { data: r.data!, dims: r.dims! };
  }

  /** Releases the session and ends the thread. */
  async close(): Promise<void> {
    if (this.dead === undefined) await this.call({ type: 'release' }, []).catch(() => undefined);
    await this.worker.terminate();
  }

  private call(message: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Reply> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise<Reply>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ ...message, id }, transfer);
      } catch (err) {
        // Nothing was sent: forget the call, so the thread does not keep the process alive for it.
        this.pending.delete(id);
        if (this.pending.size === 0) this.worker.unref();
        reject(new OodError('BACKEND_UNAVAILABLE', `onnxruntime-node encoder thread: could not send a batch (${(err as Error).message.split('\n')[0]})`));
      }
    });
  }
}
