import { initBackend } from '../../shared/backend.js';
import { encoderForModel, extractAndScore, openModel } from '../../shared/app/operations.js';
import { listImages } from '../../shared/app/listing.js';
import { writeRunOutputs } from '../../shared/app/outputs.js';
import { disposeModel } from '../../shared/dlsr/model.js';
import { OodError } from '../../shared/errors.js';
import { joinKey } from '../../shared/storage/object-store.js';
import { openLocation } from '../../shared/storage/open.js';
import { parseEnv } from '../../shared/config/env.js';
import { backendChoice, required, type Values } from '../options.js';
import { cliContext } from '../context.js';

/** `scan --in-process`: the whole scan in this process, same outputs as the queue pipeline. */
export async function scoreInProcess(v: Values): Promise<void> {
  const env = parseEnv(process.env);
  const modelLoc = openLocation(required(v, 'model'), env, true);
  const input = openLocation(required(v, 'input'), env, true);
  const out = openLocation(required(v, 'out'), env);
  const backend = await initBackend(backendChoice(v));
  const ctx = cliContext(backend, env);
  const started = performance.now();
  const model = await openModel(modelLoc.store, modelLoc.prefix);
  try {
    const encoder = await encoderForModel(model, ctx);
    try {
      const listing = await listImages(input.store, input.prefix);
      if (listing.images.length === 0) throw new OodError('NOT_FOUND', `no images under ${joinKey(input.store.uri, input.prefix)} (${listing.skipped.length} other files)`);
      const scored = await extractAndScore(model, encoder, input.store, listing.images.map((o) => o.key), ctx, 'score');
      const summary = await writeRunOutputs({
        store: out.store,
        prefix: out.prefix,
        model,
        modelUri: modelLoc.uri,
        inputUri: input.uri,
        table: scored.table,
        failures: scored.features.failures,
        skippedNonImages: listing.skipped.length,
        extractSeconds: scored.extractSeconds,
        scoreSeconds: scored.scoreSeconds,
        totalSeconds: (performance.now() - started) / 1000,
        backend: backend.provider,
      });
      process.stdout.write(
        `${summary.input.scored} scored, ${summary.input.failed} failed, ${summary.flagged} flagged ` +
          `(${(summary.flaggedFraction * 100).toFixed(1)}% vs ${(summary.expectedFraction * 100).toFixed(0)}% expected in-distribution); outputs in ${out.uri}\n`,
      );
    } finally {
      encoder.dispose();
    }
  } finally {
    disposeModel(model);
  }
}
