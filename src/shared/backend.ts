/**
 * Backend selection, once per process. The tfjs tensor backend is the fastest that loads:
 * tfjs-node-gpu (CUDA) > tfjs-node > wasm > cpu. `tfjs-node(-gpu)` are optional dependencies that
 * often cannot be installed (their install script downloads libtensorflow), so they are probed with
 * a dynamic import and skipped when missing. The wasm backend is single-threaded in Node: scale
 * across cores with processes. The encoder runtime is onnxruntime-node when it loads (also an
 * optional dependency) unless a tfjs backend is asked for by name (backend-choice.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from './errors.js';
import { DEFAULT_ORT_THREADS, TENSOR_BACKENDS, type Backend, type BackendChoice, type EncoderRuntime } from './backend-choice.js';
import { loadOrt } from './encoder/onnx/runtime.js';

export interface BackendInfo {
  /** The tfjs backend name actually active (`tensorflow` for both tfjs-node flavours). */
  readonly name: string;
  /** Which package provided it. */
  readonly provider: Backend;
  readonly tfjsVersion: string;
  /** What runs the built-in encoder. */
  readonly encoder: EncoderRuntime;
  /** One line for logs and artifacts, e.g. `encoder onnxruntime-node 1.30.0 cpu (1 thread), tensors wasm`. */
  readonly label: string;
}

export interface BackendOptions {
  /** Intra-op threads of onnxruntime sessions (OOD_ORT_THREADS). */
  readonly ortThreads?: number;
}

let active: { info: BackendInfo } | undefined;

/** Whether an initialised process already is what `choice` asks for. */
function satisfies(choice: BackendChoice, info: BackendInfo): boolean {
  switch (choice) {
    case 'auto':
      return true;
    case 'onnx':
    case 'onnx-cuda':
      return info.encoder.kind === 'onnx' && info.encoder.device === (choice === 'onnx' ? 'cpu' : 'cuda');
    default:
      return info.encoder.kind === 'tfjs' && info.provider === choice;
  }
}

async function tryNode(pkg: string): Promise<boolean> {
  try {
    await import(pkg);
    return tf.findBackendFactory('tensorflow') !== null;
  } catch {
    return false;
  }
}

async function activate(provider: Backend): Promise<boolean> {
  switch (provider) {
    case 'tensorflow-gpu':
      if (!(await tryNode('@tensorflow/tfjs-node-gpu'))) return false;
      return tf.setBackend('tensorflow');
    case 'tensorflow':
      if (!(await tryNode('@tensorflow/tfjs-node'))) return false;
      return tf.setBackend('tensorflow');
    case 'wasm':
      try {
        await import('@tensorflow/tfjs-backend-wasm');
        return await tf.setBackend('wasm');
      } catch {
        return false;
      }
    case 'cpu':
      return tf.setBackend('cpu');
  }
}

/**
 * Selects and initialises the tensor backend once per process. `choice` forces one backend and fails
 * with a clear error when it cannot load; `auto` walks the preference list.
 */
export async function initBackend(choice: BackendChoice = 'auto', options: BackendOptions = {}): Promise<BackendInfo> {
  if (active !== undefined) {
    if (satisfies(choice, active.info)) return active.info;
    throw new OodError('BACKEND_UNAVAILABLE', `backend already initialised as ${active.info.label}, cannot switch to ${choice}`);
  }
  const encoder = await encoderRuntime(choice, options.ortThreads ?? DEFAULT_ORT_THREADS);
  const tensorChoice = choice === 'auto' || choice === 'onnx' || choice === 'onnx-cuda' ? 'auto' : choice;
  const order = tensorChoice === 'auto' ? TENSOR_BACKENDS : [tensorChoice];
  for (const provider of order) {
    if (await activate(provider)) {
      await tf.ready();
      const info: BackendInfo = { name: tf.getBackend(), provider, tfjsVersion: tf.version.tfjs, encoder: encoder.runtime, label: `encoder ${encoder.label ?? `tfjs ${provider}`}, tensors ${provider}` };
      active = { info };
      return info;
    }
  }
  const hint =
    tensorChoice === 'tensorflow-gpu' || tensorChoice === 'tensorflow'
      ? ' (install @tensorflow/tfjs-node or -gpu; it needs to download libtensorflow at install time)'
      : '';
  throw new OodError('BACKEND_UNAVAILABLE', `tensor backend ${tensorChoice} could not be loaded${hint}`);
}

/** The encoder runtime of a choice: onnxruntime when asked for (or, under auto, when it loads), else tfjs. */
async function encoderRuntime(choice: BackendChoice, threads: number): Promise<{ runtime: EncoderRuntime; label?: string }> {
  if (choice !== 'auto' && choice !== 'onnx' && choice !== 'onnx-cuda') return { runtime: { kind: 'tfjs' } };
  if (!Number.isInteger(threads) || threads < 1) throw new OodError('CONFIG_INVALID', `invalid onnxruntime thread count: expected an integer >= 1, got ${threads}`);
  const ort = await loadOrt();
  if (!ort.ok) {
    if (choice === 'auto') return { runtime: { kind: 'tfjs' } };
    throw new OodError('BACKEND_UNAVAILABLE', `backend ${choice}: onnxruntime-node could not be loaded (${ort.reason}); install it with npm ci (optional dependency), or choose wasm`);
  }
  const device = choice === 'onnx-cuda' ? 'cuda' : 'cpu';
  return { runtime: { kind: 'onnx', device, threads }, label: `onnxruntime-node ${ort.version} ${device} (${threads} thread${threads === 1 ? '' : 's'})` };
}
