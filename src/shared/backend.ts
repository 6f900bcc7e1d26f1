/**
 * Tensor backend selection. At start-up we pick the fastest backend that loads:
 * tfjs-node-gpu (CUDA) > tfjs-node > wasm > cpu. `tfjs-node(-gpu)` are optional dependencies that
 * often cannot be installed (their install script downloads libtensorflow), so they are probed with
 * a dynamic import and skipped when missing. The wasm backend is single-threaded in Node: scale
 * across cores with processes.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from './errors.js';
import { BACKENDS, type Backend, type BackendChoice } from './backend-choice.js';

export interface BackendInfo {
  /** The tfjs backend name actually active (`tensorflow` for both tfjs-node flavours). */
  readonly name: string;
  /** Which package provided it. */
  readonly provider: Backend;
  readonly tfjsVersion: string;
}

let active: BackendInfo | undefined;

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
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (active !== undefined) {
    if (choice === 'auto' || choice === active.provider) return active;
    throw new OodError('BACKEND_UNAVAILABLE', `backend already initialised as ${active.provider}, cannot switch to ${choice}`);
  }
  const order = choice === 'auto' ? BACKENDS : [choice];
  for (const provider of order) {
    if (await activate(provider)) {
      await tf.ready();
      active = { name: tf.getBackend(), provider, tfjsVersion: tf.version.tfjs };
      return active;
    }
  }
  const hint =
    choice === 'tensorflow-gpu' || choice === 'tensorflow'
      ? ' (install @tensorflow/tfjs-node or -gpu; it needs to download libtensorflow at install time)'
      : '';
  throw new OodError('BACKEND_UNAVAILABLE', `tensor backend ${choice} could not be loaded${hint}`);
}
