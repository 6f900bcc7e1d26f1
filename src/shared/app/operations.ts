/**
 * The engine's operations over object stores, run in-process: extract, fit (resumable from the
 * checkpoint in the model folder), score, evaluate. The queue workers run the same functions on
 * shards.
 */
import { OodError } from '../errors.js';
import { assertSameEncoder, type Encoder } from '../encoder/encoder.js';
import { createEncoder, type EncoderSpec } from '../encoder/registry.js';
import { extractFeatures } from '../extract.js';
import { decodeFeatureSet, encodeFeatureSet, type FeatureSet } from '../feature-set.js';
import { joinKey, type ObjectStore } from '../storage/object-store.js';
import type { DlsrConfig } from '../dlsr/config.js';
import { fitDlsr } from '../dlsr/fit.js';
import { decodeCheckpoint, encodeCheckpoint, loadModel, MODEL_FILES, saveModel } from '../dlsr/artifact.js';
import { scoreFeatures, type DlsrModel, type ScoreTable } from '../dlsr/model.js';
import type { EpochResult } from '../diffusion/train.js';
import { versions, type RunContext } from './context.js';
import { listImages } from './listing.js';

export const ID_FEATURES_KEY = 'features/id.oodf';

export async function extractFromStore(encoder: Encoder, store: ObjectStore, keys: readonly string[], ctx: RunContext, label: string): Promise<FeatureSet> {
  const bar = ctx.progress(label, keys.length, 'img');
  const set = await extractFeatures(encoder, keys, (k) => store.get(k), {
    onProgress: (done, _total, failed) => bar.update(done, failed > 0 ? `${failed} failed` : undefined),
    backend: ctx.backend.provider,
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
  });
  bar.done(set.failures.length > 0 ? `${set.failures.length} failed` : undefined);
  return set;
}

export interface FitParams {
  readonly idStore: ObjectStore;
  readonly idPrefix: string;
  readonly modelStore: ObjectStore;
  readonly modelPrefix: string;
  readonly config: DlsrConfig;
}

export interface FitOutcome {
  readonly model: DlsrModel;
  readonly log: readonly EpochResult[];
  readonly features: FeatureSet;
  readonly resumedFromEpoch: number;
  readonly skipped: number;
}

/**
 * Extracts (or reuses) the ID features, trains with a checkpoint per epoch, calibrates and saves.
 * A checkpoint left in the model folder by a killed run with the same config and encoder is resumed.
 */
export async function fitModel(p: FitParams, ctx: RunContext): Promise<FitOutcome> {
  const mk = (name: string): string => joinKey(p.modelPrefix, name);
  const encoder = await createEncoder(p.config.encoder, ctx.encoders);
  let features: FeatureSet;
  let skipped = 0;
  try {
    const cached = await p.modelStore.head(mk(ID_FEATURES_KEY));
    const listing = await listImages(p.idStore, p.idPrefix);
    skipped = listing.skipped.length;
    if (listing.images.length === 0) throw new OodError('NOT_FOUND', `no images under ${joinKey(p.idStore.uri, p.idPrefix)} (${skipped} other files)`);
    const reuse = cached !== undefined ? decodeFeatureSet(await p.modelStore.get(mk(ID_FEATURES_KEY)), mk(ID_FEATURES_KEY)) : undefined;
    const sameKeys = reuse !== undefined && reuse.fingerprint.id === encoder.fingerprint.id && reuse.keys.length + reuse.failures.length === listing.images.length;
    if (reuse !== undefined && sameKeys) {
      ctx.log(`reusing ${reuse.keys.length} cached ID features from ${mk(ID_FEATURES_KEY)}`);
      features = reuse;
    } else {
      ctx.log(`extracting features of ${listing.images.length} ID images with ${encoder.fingerprint.encoder} (${encoder.inputSize}px, taps ${encoder.fingerprint.taps.join(',')}) on ${ctx.backend.provider}`);
      features = await extractFromStore(encoder, p.idStore, listing.images.map((o) => o.key), ctx, 'extract');
      await p.modelStore.put(mk(ID_FEATURES_KEY), encodeFeatureSet(features));
    }
  } finally {
    encoder.dispose();
  }
  for (const f of features.failures.slice(0, 20)) ctx.log(`skipped ${f.key}: ${f.reason}`);
  if (features.failures.length > 20) ctx.log(`... and ${features.failures.length - 20} more failed images`);

  const trained = await trainAndSave(features, p.modelStore, p.modelPrefix, p.config, ctx, undefined, joinKey(p.idStore.uri, p.idPrefix));
  return { ...trained, features, skipped };
}

export interface TrainOutcome {
  readonly model: DlsrModel;
  readonly log: readonly EpochResult[];
  readonly resumedFromEpoch: number;
}

/**
 * Trains on ID features with a checkpoint per epoch in the model folder, calibrates and saves. A
 * checkpoint left there by a killed run with the same configuration and encoder is resumed.
 * `onEpoch` lets a queue job record its progress and latest checkpoint.
 */
export async function trainAndSave(
  features: FeatureSet,
  modelStore: ObjectStore,
  modelPrefix: string,
  config: DlsrConfig,
  ctx: RunContext,
  onEpoch?: (epoch: number, loss: number, checkpointKey: string) => Promise<void>,
  idSource?: string,
): Promise<TrainOutcome> {
  const mk = (name: string): string => joinKey(modelPrefix, name);
  const d = features.stageSizes.reduce((a, b) => a + b, 0);
  let resume: Awaited<ReturnType<typeof decodeCheckpoint>> | undefined;
  if ((await modelStore.head(mk(MODEL_FILES.latestCheckpoint))) !== undefined) {
    const ck = decodeCheckpoint(await modelStore.get(mk(MODEL_FILES.latestCheckpoint)), mk(MODEL_FILES.latestCheckpoint), d);
    const sameConfig = JSON.stringify({ ...ck.config, train: { ...ck.config.train, epochs: 0 } }) === JSON.stringify({ ...config, train: { ...config.train, epochs: 0 } });
    if (sameConfig && ck.fingerprintId === features.fingerprint.id && ck.state.epoch <= config.train.epochs) {
      ctx.log(`resuming training from the checkpoint after epoch ${ck.state.epoch}`);
      resume = ck;
    } else {
      ctx.log('ignoring the checkpoint in the model folder: it was made with another configuration or encoder');
      for (const g of [ck.state.params, ck.state.ema, ck.state.m, ck.state.v, ck.firstEpochEma]) for (const t of g.values()) t.dispose();
    }
  }
  const resumedFromEpoch = resume?.state.epoch ?? 0;
  const bar = ctx.progress('train', config.train.epochs, 'epochs');
  if (resumedFromEpoch > 0) bar.update(resumedFromEpoch);
  const { model, log } = await fitDlsr(features, config, {
    backend: ctx.backend.provider,
    versions: versions(ctx.backend),
    ...(idSource !== undefined ? { idSource } : {}),
    ...(resume !== undefined ? { resume: { state: resume.state, firstEpochEma: resume.firstEpochEma } } : {}),
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
    onEpoch: async (result, state, firstEma) => {
      const bytes = await encodeCheckpoint(state, firstEma, config, features.fingerprint.id);
      if (result.epoch === 1) await modelStore.put(mk(MODEL_FILES.firstCheckpoint), bytes);
      await modelStore.put(mk(MODEL_FILES.latestCheckpoint), bytes);
      bar.update(result.epoch, `loss ${result.loss.toFixed(5)}`);
      ctx.log(`epoch ${result.epoch}/${config.train.epochs} loss ${result.loss.toFixed(5)} (${result.seconds.toFixed(1)}s)`);
      await onEpoch?.(result.epoch, result.loss, mk(MODEL_FILES.latestCheckpoint));
    },
  });
  bar.done();
  await saveModel(modelStore, modelPrefix, model, log);
  return { model, log, resumedFromEpoch };
}

export async function openModel(store: ObjectStore, prefix: string): Promise<DlsrModel> {
  return loadModel(store, prefix);
}

/** Creates the encoder a model was fitted with and checks that it still produces the same fingerprint. */
export async function encoderForModel(model: DlsrModel, ctx: RunContext, override?: EncoderSpec): Promise<Encoder> {
  const encoder = await createEncoder(override ?? model.config.encoder, ctx.encoders);
  try {
    assertSameEncoder(model.fingerprint, encoder.fingerprint, 'scoring with this model');
  } catch (err) {
    encoder.dispose();
    throw err;
  }
  return encoder;
}

export interface ScoredSet {
  readonly features: FeatureSet;
  readonly table: ScoreTable;
  readonly extractSeconds: number;
  readonly scoreSeconds: number;
}

export async function extractAndScore(model: DlsrModel, encoder: Encoder, store: ObjectStore, keys: readonly string[], ctx: RunContext, label: string): Promise<ScoredSet> {
  let t = performance.now();
  const features = await extractFromStore(encoder, store, keys, ctx, `${label}: extract`);
  const extractSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const bar = ctx.progress(`${label}: score`, features.keys.length, 'img');
  const table = scoreFeatures(model, features.features, features.keys, { onProgress: (done) => bar.update(done) });
  bar.done();
  return { features, table, extractSeconds, scoreSeconds: (performance.now() - t) / 1000 };
}
