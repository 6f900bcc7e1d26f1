/**
 * Job: the ID features of every extract shard (the run's groups record their extract results) -> LFDN training with a checkpoint in the model folder
 * after every epoch -> baselines and calibration on the held-out ID images -> the model artifact.
 * A retried or re-delivered job (its worker was killed, or the fit was run again) resumes from the
 * last checkpoint when it was made with the same configuration, encoder and training data.
 */
import { OodError } from '../errors.js';
import { stableHash } from '../hash.js';
import { concatFeatureSets, type FeatureSet } from '../feature-set.js';
import { validateDlsrConfig, type DlsrConfig } from '../dlsr/config.js';
import { decodeCheckpoint, encodeCheckpoint, saveModel } from '../dlsr/artifact.js';
import { MODEL_FILES } from '../dlsr/model-json.js';
import { fitDlsr } from '../dlsr/fit.js';
import { disposeModel } from '../dlsr/model.js';
import { groupExtracts, runRecord, workKeys, type ExtractResult, type TrainPayload, type TrainResult } from '../queue/contract.js';
import { getValidJson, joinKey } from '../storage/object-store.js';
import { versions, type JobContext } from './context.js';
import { readExtracted } from './extract-shard.js';

/** Called after every epoch (the queue records the epoch, loss and checkpoint on the job). */
export type OnEpoch = (epoch: number, loss: number, checkpointKey: string) => Promise<void>;

/** The extract results of every shard of a fit run, in shard order, from its groups' records. */
async function extractResults(p: TrainPayload, ctx: JobContext): Promise<ExtractResult[]> {
  const work = ctx.open(p.work);
  const record = await getValidJson(work.store, joinKey(work.prefix, workKeys.run), runRecord);
  if (record.runId !== p.runId) throw new OodError('PAYLOAD_INVALID', `${p.work}: run.json is of run ${record.runId}, not ${p.runId}`);
  const results: ExtractResult[] = [];
  for (const g of record.groups) results.push(...(await getValidJson(work.store, joinKey(work.prefix, workKeys.groupExtracts(g.id)), groupExtracts)));
  if (results.length !== record.shards) throw new OodError('INTERNAL', `train: expected ${record.shards} extract results, got ${results.length}`);
  return results.sort((a, b) => a.shard - b.shard);
}

/** Reads the shards' cached features, in shard order, into one set. */
async function loadFeatures(extracted: readonly ExtractResult[], ctx: JobContext): Promise<FeatureSet> {
  const sets: FeatureSet[] = [];
  for (const r of extracted) sets.push(await readExtracted(r, ctx));
  return concatFeatureSets(sets);
}

export async function trainModel(p: TrainPayload, ctx: JobContext, onEpoch?: OnEpoch): Promise<TrainResult> {
  const config = validateDlsrConfig(p.config as unknown as DlsrConfig);
  const extracted = await extractResults(p, ctx);
  const features = await loadFeatures(extracted, ctx);
  for (const f of features.failures.slice(0, 20)) ctx.log(`skipped ${f.key}: ${f.reason}`);
  if (features.failures.length > 20) ctx.log(`... and ${features.failures.length - 20} more failed images`);
  // The training data: every shard's features key names its encoder and its content (keys + ETags).
  const origin = { config, fingerprintId: features.fingerprint.id, dataId: stableHash(extracted.map((r) => r.featuresKey).sort()) };
  const model = ctx.open(p.model);
  const mk = (name: string): string => joinKey(model.prefix, name);
  const d = features.stageSizes.reduce((a, b) => a + b, 0);
  let resume: ReturnType<typeof decodeCheckpoint> | undefined;
  if ((await model.store.head(mk(MODEL_FILES.latestCheckpoint))) !== undefined) {
    const ck = decodeCheckpoint(await model.store.get(mk(MODEL_FILES.latestCheckpoint)), mk(MODEL_FILES.latestCheckpoint), d);
    const sameConfig = JSON.stringify({ ...ck.config, train: { ...ck.config.train, epochs: 0 } }) === JSON.stringify({ ...config, train: { ...config.train, epochs: 0 } });
    if (sameConfig && ck.fingerprintId === origin.fingerprintId && ck.dataId === origin.dataId && ck.state.epoch <= config.train.epochs) {
      ctx.log(`resuming training from the checkpoint after epoch ${ck.state.epoch}`);
      resume = ck;
    } else {
      ctx.log('ignoring the checkpoint in the model folder: it was made with another configuration, encoder or training data');
      for (const g of [ck.state.params, ck.state.ema, ck.state.m, ck.state.v, ck.firstEpochEma]) for (const t of g.values()) t.dispose();
    }
  }
  const resumedFromEpoch = resume?.state.epoch ?? 0;
  const bar = ctx.progress('train', config.train.epochs, 'epochs');
  if (resumedFromEpoch > 0) bar.update(resumedFromEpoch);
  const { model: fitted, log } = await fitDlsr(features, config, {
    backend: ctx.backend.provider,
    versions: versions(ctx.backend),
    ...(p.input !== undefined ? { idSource: p.input } : {}),
    ...(resume !== undefined ? { resume: { state: resume.state, firstEpochEma: resume.firstEpochEma } } : {}),
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
    onEpoch: async (result, state, firstEma) => {
      const bytes = await encodeCheckpoint(state, firstEma, origin);
      if (result.epoch === 1) await model.store.put(mk(MODEL_FILES.firstCheckpoint), bytes);
      await model.store.put(mk(MODEL_FILES.latestCheckpoint), bytes);
      bar.update(result.epoch, `loss ${result.loss.toFixed(5)}`);
      ctx.log(`epoch ${result.epoch}/${config.train.epochs} loss ${result.loss.toFixed(5)} (${result.seconds.toFixed(1)}s)`);
      await onEpoch?.(result.epoch, result.loss, mk(MODEL_FILES.latestCheckpoint));
    },
  });
  bar.done();
  try {
    await saveModel(model.store, model.prefix, fitted, log);
    return {
      model: p.model,
      epochs: fitted.info.epochs,
      resumedFromEpoch,
      trainCount: fitted.info.trainCount,
      holdoutCount: fitted.info.holdoutCount,
      failed: features.failures.length,
      primary: config.scoring.primary,
      threshold: fitted.calibration?.scores[config.scoring.primary]?.threshold ?? Number.NaN,
    };
  } finally {
    disposeModel(fitted);
  }
}
