import { writeFile } from 'node:fs/promises';
import { initBackend } from '../../shared/backend.js';
import { encoderForModel, extractAndScore, openModel, type ScoredSet } from '../../shared/app/operations.js';
import { listImages, spreadSample } from '../../shared/app/listing.js';
import { evaluateScores, formatEvalTable, type EvalReport } from '../../shared/app/evaluate.js';
import { disposeModel } from '../../shared/dlsr/model.js';
import { OodError } from '../../shared/errors.js';
import { joinKey } from '../../shared/storage/object-store.js';
import { openLocation } from '../../shared/storage/open.js';
import { parseEnv } from '../../shared/config/env.js';
import { BACKEND_OPTION, backendChoice, int, parse, required, str } from '../options.js';
import { cliContext } from '../context.js';

export const EVAL_USAGE = `ood-audit eval --model <dir> --id <dir> --ood <name>=<dir> [--ood ...] [--json <file>] [--limit N]
  The paper's protocol: scores an ID test set and each OOD set, and reports AUROC, FPR at 95% TPR,
  AUPR-in and AUPR-out for every score type (DLSR's and the Mahalanobis / kNN baselines).
  --limit N   at most N images per set (an evenly spread, deterministic subset)`;

export async function evalCommand(argv: readonly string[]): Promise<void> {
  const v = parse(argv, { model: { type: 'string' }, id: { type: 'string' }, ood: { type: 'string', multiple: true }, json: { type: 'string' }, limit: { type: 'string' }, ...BACKEND_OPTION });
  const env = parseEnv(process.env);
  const modelLoc = openLocation(required(v, 'model'), env, true);
  const idLoc = openLocation(required(v, 'id'), env, true);
  const oodArgs = (v['ood'] as string[] | undefined) ?? [];
  if (oodArgs.length === 0) throw new OodError('CONFIG_INVALID', 'missing --ood <name>=<dir> (at least one OOD set)');
  const oods = oodArgs.map((arg) => {
    const eq = arg.indexOf('=');
    if (eq <= 0 || eq === arg.length - 1) throw new OodError('CONFIG_INVALID', `invalid --ood: expected <name>=<dir>, got ${JSON.stringify(arg)}`);
    return { name: arg.slice(0, eq), loc: openLocation(arg.slice(eq + 1), env, true) };
  });
  const names = new Set(oods.map((o) => o.name));
  if (names.size !== oods.length || names.has('id')) throw new OodError('CONFIG_INVALID', 'invalid --ood: set names must be unique and not "id"');
  const limit = int(v, 'limit', 1);
  const jsonPath = str(v, 'json');
  const backend = await initBackend(backendChoice(v));
  const ctx = cliContext(backend);
  const model = await openModel(modelLoc.store, modelLoc.prefix);
  try {
    const encoder = await encoderForModel(model);
    try {
      const run = async (name: string, loc: typeof idLoc): Promise<ScoredSet> => {
        const listing = await listImages(loc.store, loc.prefix);
        if (listing.images.length === 0) throw new OodError('NOT_FOUND', `no images under ${joinKey(loc.store.uri, loc.prefix)} for set ${name}`);
        const keys = spreadSample(listing.images.map((o) => o.key), limit);
        return extractAndScore(model, encoder, loc.store, keys, ctx, name);
      };
      const id = await run('id', idLoc);
      const sets: Record<string, ScoredSet> = {};
      for (const o of oods) sets[o.name] = await run(o.name, o.loc);
      const report: EvalReport = evaluateScores(id, sets);
      process.stdout.write(formatEvalTable(report));
      if (jsonPath !== undefined) {
        await writeFile(jsonPath, JSON.stringify(report, null, 2) + '\n');
        ctx.log(`wrote ${jsonPath}`);
      }
    } finally {
      encoder.dispose();
    }
  } finally {
    disposeModel(model);
  }
}
