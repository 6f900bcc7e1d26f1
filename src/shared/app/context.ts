/**
 * What an operation needs from its host (CLI, worker, test): the active backend, version stamps, a
 * logger and a progress factory. Operations never print or read the environment themselves.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo } from '../backend.js';
import type { EncoderContext } from '../encoder/registry.js';

export interface Progress {
  update(done: number, extra?: string): void;
  done(extra?: string): void;
}

export interface RunContext {
  readonly backend: BackendInfo;
  /** Opens the folder of a plugged-in encoder's model.json (local or object storage). */
  readonly encoders?: EncoderContext;
  readonly log: (message: string) => void;
  readonly progress: (label: string, total: number, unit: string) => Progress;
  readonly signal?: AbortSignal;
}

export const silentProgress = (): Progress => ({ update: () => undefined, done: () => undefined });

let cachedVersions: Record<string, string> | undefined;

export function versions(backend: BackendInfo): Record<string, string> {
  if (cachedVersions === undefined) {
    const require = createRequire(import.meta.url);
    const pkg = require('../../../package.json') as { version: string };
    cachedVersions = { 'ood-audit': pkg.version, tfjs: tf.version.tfjs, node: process.versions.node };
  }
  return { ...cachedVersions, backend: backend.provider };
}
