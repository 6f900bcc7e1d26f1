/**
 * The per-process engine behind JobContext: the tensor backend, and caches so that an encoder or a
 * model is loaded once per process, not once per job (a sandboxed processor is reused for many
 * jobs; the in-process CLI runs every job of a plan). A model is reloaded when its model.json
 * changes (a refit into the same folder).
 */
import { initBackend, type BackendInfo, type BackendOptions } from '../backend.js';
import type { BackendChoice } from '../backend-choice.js';
import { OodError } from '../errors.js';
import { stableHash } from '../hash.js';
import type { Encoder } from '../encoder/encoder.js';
import { createEncoder } from '../encoder/registry.js';
import type { EncoderSpec } from '../encoder/spec.js';
import { loadModel } from '../dlsr/artifact.js';
import { MODEL_FILES } from '../dlsr/model-json.js';
import { disposeModel, type DlsrModel } from '../dlsr/model.js';
import type { Location } from '../storage/locate.js';
import type { JobContext } from './context.js';
import { joinKey, type GetOptions } from '../storage/object-store.js';

export interface Engine {
  readonly backend: BackendInfo;
  encoder(spec: EncoderSpec): Promise<Encoder>;
  model(uri: string): Promise<DlsrModel>;
  /** Frees every cached encoder and model. */
  dispose(): Promise<void>;
}

export async function createEngine(choice: BackendChoice, open: (uri: string, mustExist?: boolean) => Location, options: BackendOptions = {}): Promise<Engine> {
  const backend = await initBackend(choice, options);
  const encoders = new Map<string, Promise<Encoder>>();
  const models = new Map<string, { etag: string; model: DlsrModel }>();
  const folders = {
    runtime: backend.encoder,
    openModelFolder: (uri: string) => {
      const loc = open(uri, true);
      return (rel: string, options?: GetOptions) => loc.store.get(joinKey(loc.prefix, rel), options);
    },
  };
  return {
    backend,
    encoder(spec) {
      const key = stableHash(spec);
      let e = encoders.get(key);
      if (e === undefined) {
        e = createEncoder(spec, folders);
        encoders.set(key, e);
        e.catch(() => encoders.delete(key));
      }
      return e;
    },
    async model(uri) {
      const loc = open(uri);
      const head = await loc.store.head(joinKey(loc.prefix, MODEL_FILES.model));
      if (head === undefined) throw new OodError('NOT_FOUND', `no model at ${uri}: ${MODEL_FILES.model} is missing`);
      const cached = models.get(uri);
      if (cached !== undefined && cached.etag === head.etag) return cached.model;
      const model = await loadModel(loc.store, loc.prefix);
      if (cached !== undefined) disposeModel(cached.model);
      models.set(uri, { etag: head.etag, model });
      return model;
    },
    async dispose() {
      for (const e of encoders.values()) (await e.catch(() => undefined))?.dispose();
      for (const m of models.values()) disposeModel(m.model);
      encoders.clear();
      models.clear();
    },
  };
}

/** A job context over an engine: the host supplies where logs and progress go, and the cancellation signal. */
export function engineContext(engine: Engine, open: (uri: string, mustExist?: boolean) => Location, host: Pick<JobContext, 'log' | 'progress' | 'signal'>): JobContext {
  return {
    backend: engine.backend,
    open,
    encoder: (spec) => engine.encoder(spec),
    model: (uri) => engine.model(uri),
    log: host.log,
    progress: host.progress,
    ...(host.signal !== undefined ? { signal: host.signal } : {}),
  };
}
