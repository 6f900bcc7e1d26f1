/**
 * What a job function needs from its host (a sandboxed queue processor, or the CLI running a plan
 * in-process): the active tensor backend, a way to open locations, the process's encoder and model
 * caches, a logger, a progress factory and a cancellation signal. Job functions never print, read
 * the environment or talk to the queue themselves.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo } from '../backend.js';
import type { Encoder } from '../encoder/encoder.js';
import type { EncoderSpec } from '../encoder/spec.js';
import type { DlsrModel } from '../dlsr/model.js';
import type { Location } from '../storage/locate.js';

export interface Progress {
  update(done: number, extra?: string): void;
  done(extra?: string): void;
}

export interface JobContext {
  readonly backend: BackendInfo;
  /** Opens a location named in a payload (an input must exist). */
  readonly open: (uri: string, mustExist?: boolean) => Location;
  /** The encoder of `spec`, loaded once per process (owned by the host: do not dispose). */
  readonly encoder: (spec: EncoderSpec) => Promise<Encoder>;
  /** The model at `uri`, loaded once per process and reloaded when it changes (owned by the host). */
  readonly model: (uri: string) => Promise<DlsrModel>;
  readonly log: (message: string) => void;
  readonly progress: (label: string, total: number, unit: string) => Progress;
  readonly signal?: AbortSignal;
}

let cachedVersions: Record<string, string> | undefined;

/** Version stamps recorded in every model. */
export function versions(backend: BackendInfo): Record<string, string> {
  if (cachedVersions === undefined) {
    const require = createRequire(import.meta.url);
    const pkg = require('../../../package.json') as { version: string };
    cachedVersions = { 'ood-audit': pkg.version, tfjs: tf.version.tfjs, node: process.versions.node };
  }
  return { ...cachedVersions, backend: backend.provider };
}
