/**
 * Flag parsing for the CLI, once, at the edge. Every option is validated here and errors name the
 * option and echo the bad value; commands receive frozen, typed values.
 */
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OodError } from '../shared/errors.js';
import type { BackendChoice } from '../shared/backend-choice.js';
import { DEFAULTS } from '../shared/config/defaults.js';
import { parseBackendChoice } from '../shared/config/env.js';
import { MAX_OBJECT_BYTES } from '../shared/storage/object-store.js';
import { defaultConfig, SCORE_TYPES, validateDlsrConfig, type DlsrConfig, type ScoreType, type WhitenMode } from '../shared/dlsr/config.js';
import { LFDN_PRESETS, type LfdnPreset } from '../shared/diffusion/config.js';
import { ENCODERS, parsePreprocessing } from '../shared/encoder/spec.js';

export type Values = Record<string, string | boolean | string[] | undefined>;

export function parse(argv: readonly string[], options: NonNullable<ParseArgsConfig['options']>): Values {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: false, strict: true }).values as Values;
  } catch (err) {
    throw new OodError('CONFIG_INVALID', (err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

export function str(v: Values, name: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : undefined;
}

export function required(v: Values, name: string): string {
  const x = str(v, name);
  if (x === undefined || x === '') throw new OodError('CONFIG_INVALID', `missing --${name}`);
  return x;
}

export function int(v: Values, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  const n = Number(x);
  if (!/^-?\d+$/.test(x) || n < min || n > max) throw new OodError('CONFIG_INVALID', `invalid --${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(x)}`);
  return n;
}

export function num(v: Values, name: string, min: number, max: number): number | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  const n = Number(x);
  if (x.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new OodError('CONFIG_INVALID', `invalid --${name}: expected a number in [${min}, ${max}], got ${JSON.stringify(x)}`);
  return n;
}

export function list(v: Values, name: string): string[] | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  const items = x.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new OodError('CONFIG_INVALID', `invalid --${name}: expected a comma-separated list, got ${JSON.stringify(x)}`);
  return items;
}

export function scoreTypes(v: Values, name: string): ScoreType[] | undefined {
  const items = list(v, name);
  for (const s of items ?? []) {
    if (!(SCORE_TYPES as readonly string[]).includes(s)) throw new OodError('CONFIG_INVALID', `invalid --${name}: expected some of ${SCORE_TYPES.join(', ')}, got ${JSON.stringify(s)}`);
  }
  return items as ScoreType[] | undefined;
}

export const BACKEND_OPTION = { backend: { type: 'string' } } as const;

/** --backend, when given (otherwise the environment's OOD_BACKEND applies). */
export function backendChoice(v: Values): BackendChoice | undefined {
  const b = str(v, 'backend');
  return b === undefined ? undefined : parseBackendChoice(b);
}

/** Options of a scan, shared by `scan` and `schedule ... scan`. */
export const SCAN_OPTIONS = {
  'shard-size': { type: 'string' },
  'max-bytes': { type: 'string' },
  cache: { type: 'string' },
  full: { type: 'boolean' },
  'partition-depth': { type: 'string' },
  'top-k': { type: 'string' },
  'md-style': { type: 'string' },
  primary: { type: 'string' },
} as const;

export interface ScanSettings {
  readonly shardSize: number;
  /** Largest image file read, in bytes. */
  readonly maxBytes: number;
  /** Feature cache location (absolute), when not the model's own. */
  readonly cache?: string;
  readonly full: boolean;
  readonly partitionDepth: number;
  readonly topK: number;
  /** report.md's partitions: a table, or a plain list for chat tools without tables. */
  readonly mdStyle: 'table' | 'list';
  /** The score that decides `flagged` (default: the model's primary). */
  readonly primary?: ScoreType;
}

export function scanSettings(v: Values): ScanSettings {
  const cache = str(v, 'cache');
  return {
    shardSize: shardSize(v),
    maxBytes: maxBytes(v),
    ...(cache !== undefined ? { cache: absolute(cache) } : {}),
    full: v['full'] === true,
    partitionDepth: int(v, 'partition-depth', 1, 16) ?? DEFAULTS.partitionDepth,
    topK: int(v, 'top-k', 0, 500) ?? DEFAULTS.topK,
    mdStyle: mdStyle(v),
    ...primaryOption(v),
  };
}

/** --primary SCORE of scan, eval and schedule (fit's is part of the model's configuration). */
export function primaryOption(v: Values): { primary?: ScoreType } {
  const p = str(v, 'primary');
  if (p === undefined) return {};
  if (!(SCORE_TYPES as readonly string[]).includes(p)) throw new OodError('CONFIG_INVALID', `invalid --primary: expected one of ${SCORE_TYPES.join(', ')}, got ${JSON.stringify(p)}`);
  return { primary: p as ScoreType };
}

/** --md-style table|list. */
export function mdStyle(v: Values): 'table' | 'list' {
  const s = str(v, 'md-style') ?? DEFAULTS.mdStyle;
  if (s !== 'table' && s !== 'list') throw new OodError('CONFIG_INVALID', `invalid --md-style: expected table | list, got ${JSON.stringify(s)}`);
  return s;
}

/** --max-bytes: the largest image file read (a larger one is a per-image failure, never read). */
export function maxBytes(v: Values): number {
  return int(v, 'max-bytes', 1, MAX_OBJECT_BYTES) ?? DEFAULTS.maxBytes;
}

export function shardSize(v: Values): number {
  return int(v, 'shard-size', 1, 1_000_000) ?? DEFAULTS.shardSize;
}

/** Local folders become absolute paths so workers in other working directories find them. */
export function absolute(uri: string): string {
  return uri.startsWith('s3://') || uri.startsWith('file://') ? uri : path.resolve(uri);
}

/** Options that shape a model at fit time. */
export const MODEL_OPTIONS = {
  epochs: { type: 'string' },
  preset: { type: 'string' },
  width: { type: 'string' },
  depth: { type: 'string' },
  'input-size': { type: 'string' },
  taps: { type: 'string' },
  preprocessing: { type: 'string' },
  encoder: { type: 'string' },
  'encoder-uri': { type: 'string' },
  seed: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  'weight-decay': { type: 'string' },
  'ema-decay': { type: 'string' },
  holdout: { type: 'string' },
  tpr: { type: 'string' },
  t: { type: 'string' },
  steps: { type: 'string' },
  eta: { type: 'string' },
  'score-seed': { type: 'string' },
  primary: { type: 'string' },
  whiten: { type: 'string' },
} as const;

export function modelConfig(v: Values): DlsrConfig {
  const base = defaultConfig();
  const presetName = str(v, 'preset') ?? base.lfdn.preset;
  if (!(presetName in LFDN_PRESETS)) throw new OodError('CONFIG_INVALID', `invalid --preset: expected ${Object.keys(LFDN_PRESETS).join(' | ')}, got ${JSON.stringify(presetName)}`);
  const preset = LFDN_PRESETS[presetName as LfdnPreset];
  const width = int(v, 'width', 2, 8192);
  const depth = int(v, 'depth', 1, 64);
  const encoderName = str(v, 'encoder') ?? base.encoder.name;
  if (!(ENCODERS as readonly string[]).includes(encoderName)) throw new OodError('UNKNOWN_ENCODER', `unknown encoder ${JSON.stringify(encoderName)}: expected one of ${ENCODERS.join(', ')}`);
  const taps = list(v, 'taps');
  if (encoderName !== 'mobilenet_v2' && taps === undefined) throw new OodError('CONFIG_INVALID', `missing --taps: the ${encoderName} encoder needs layer or node names`);
  const uri = str(v, 'encoder-uri');
  const primary = str(v, 'primary');
  if (primary !== undefined && !(SCORE_TYPES as readonly string[]).includes(primary)) throw new OodError('CONFIG_INVALID', `invalid --primary: expected one of ${SCORE_TYPES.join(', ')}, got ${JSON.stringify(primary)}`);
  const t = int(v, 't', 1, base.schedule.steps - 1) ?? base.scoring.t;
  const cfg: DlsrConfig = {
    ...base,
    encoder: {
      name: encoderName,
      ...(uri !== undefined ? { uri } : {}),
      taps: taps ?? base.encoder.taps,
      inputSize: int(v, 'input-size', 32, 1024) ?? base.encoder.inputSize,
      preprocessing: str(v, 'preprocessing') !== undefined ? parsePreprocessing(str(v, 'preprocessing')!) : base.encoder.preprocessing,
    },
    lfdn: { preset: width !== undefined || depth !== undefined ? 'custom' : (presetName as LfdnPreset), width: width ?? preset.width, depth: depth ?? preset.depth },
    train: {
      epochs: int(v, 'epochs', 1, 100_000) ?? base.train.epochs,
      batchSize: int(v, 'batch-size', 2, 65_536) ?? base.train.batchSize,
      lr: num(v, 'lr', 1e-8, 1) ?? base.train.lr,
      weightDecay: num(v, 'weight-decay', 0, 1) ?? base.train.weightDecay,
      emaDecay: num(v, 'ema-decay', 0, 0.999999) ?? base.train.emaDecay,
      seed: int(v, 'seed', 0, 2 ** 31 - 1) ?? base.train.seed,
    },
    scoring: {
      ...base.scoring,
      t,
      steps: int(v, 'steps', 1, t) ?? Math.min(base.scoring.steps, t),
      eta: num(v, 'eta', 0, 1) ?? base.scoring.eta,
      seed: int(v, 'score-seed', 0, 2 ** 31 - 1) ?? base.scoring.seed,
      tpr: num(v, 'tpr', 0.5, 0.999) ?? base.scoring.tpr,
      ...(primary !== undefined ? { primary: primary as ScoreType } : {}),
    },
    holdoutFraction: num(v, 'holdout', 0.01, 0.5) ?? base.holdoutFraction,
    whiten: (str(v, 'whiten') as WhitenMode | undefined) ?? base.whiten,
  };
  return Object.freeze(validateDlsrConfig(cfg));
}
