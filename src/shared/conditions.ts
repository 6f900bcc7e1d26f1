/**
 * The conditions score: how far an image's properties (image/properties.ts) lie from the ID set's,
 * a robust distance that sees what semantic features are built to ignore (exposure, blur, noise,
 * compression, size, colour). Fitted by `fit` and stored in model.json; plain arrays, no tfjs.
 *
 *   transform   log for the multiplicative properties (sizes, bytes per pixel, sharpness, noise),
 *               the value itself for the rest
 *   centre      median of the ID training split's transformed values
 *   scale       1.4826 x MAD (a standard deviation for normal data); binary properties use the
 *               binomial standard deviation of the smoothed ID rate; never below a per-property
 *               floor (so a property that never varies in the ID set, such as CIFAR-10's 32 px width
 *               or its JPEG quality 75, still has a finite scale and a change of it counts)
 *   z           (value - centre) / scale, |z| capped at Z_CAP; a value missing where the ID set has
 *               it (a PNG's JPEG quality among JPEGs) or present where it has not counts Z_MISMATCH
 *   score       max over the properties of |z| (one condition that is far off is enough; which one
 *               is the image's `worst` property)
 *
 * Centre and scale come from the training split and the score is calibrated on the holdout, like
 * every other score, so the 95% ID threshold is not fitted on the images it is judged on. The
 * model also keeps, per property, fixed histogram bins over the ID holdout's range with the
 * holdout's counts (for the report's property drift, from histograms merged across shards) and
 * the holdout's median in original units (for plain words: "JPEG quality 20 vs 75").
 */
import { OodError } from './errors.js';
import { PROPERTY_COUNT, PROPERTY_NAMES, type PropertyName, type PropertyTable } from './image/properties.js';
import { quantileSorted } from './stats.js';

export const Z_CAP = 50;
export const Z_MISMATCH = 8;
/** Inner bins of a property histogram (plus one underflow and one overflow bin). */
export const PROPERTY_BINS = 32;

type Transform = 'log' | 'identity' | 'binary';

interface PropertySpec {
  readonly transform: Transform;
  /** Smallest scale, in transformed units. */
  readonly floor: number;
  /** Added before the log (a property that can be 0). */
  readonly offset?: number;
}

/** How each property is compared: the transform and the smallest scale (in transformed units). */
export const PROPERTY_SPECS: Readonly<Record<PropertyName, PropertySpec>> = {
  width: { transform: 'log', floor: 0.05 },
  height: { transform: 'log', floor: 0.05 },
  aspect: { transform: 'log', floor: 0.05 },
  bytesPerPixel: { transform: 'log', floor: 0.05 },
  brightness: { transform: 'identity', floor: 0.01 },
  contrast: { transform: 'identity', floor: 0.005 },
  saturation: { transform: 'identity', floor: 0.01 },
  colourfulness: { transform: 'identity', floor: 1 },
  sharpness: { transform: 'log', floor: 0.05, offset: 1 },
  noise: { transform: 'log', floor: 0.05, offset: 0.1 },
  entropy: { transform: 'identity', floor: 0.05 },
  jpegQuality: { transform: 'identity', floor: 2 },
  grayscale: { transform: 'binary', floor: 0.05 },
};

export interface PropertyStats {
  readonly name: PropertyName;
  /** Median of the transformed training values (NaN when the ID set does not have the property). */
  readonly centre: number;
  readonly scale: number;
  /** Fraction of ID training images that have the property (not NaN). */
  readonly present: number;
  /** Inner bin edges in transformed units (PROPERTY_BINS + 1 of them). */
  readonly edges: readonly number[];
  /** ID holdout counts: [below edges[0], each inner bin, at or above the last edge, missing]. */
  readonly idCounts: readonly number[];
  /** Median of the ID holdout in the property's own units (NaN when absent). */
  readonly idMedian: number;
  /** Mean of the ID holdout's transformed values (NaN when absent): the report's "ID value". */
  readonly idMean: number;
}

export interface ConditionsModel {
  readonly version: 1;
  readonly properties: readonly PropertyStats[];
  /** ID holdout images per format. */
  readonly idFormats: Readonly<Record<string, number>>;
  readonly holdoutCount: number;
}

/** A transformed value back in the property's own units. */
export function untransformValue(name: PropertyName, t: number): number {
  const spec = PROPERTY_SPECS[name];
  return spec.transform === 'log' ? Math.exp(t) - (spec.offset ?? 0) : t;
}

export function transformValue(name: PropertyName, v: number): number {
  const spec = PROPERTY_SPECS[name];
  if (!Number.isFinite(v)) return Number.NaN;
  return spec.transform === 'log' ? Math.log(Math.max(v, 0) + (spec.offset ?? 0) + 1e-12) : v;
}

function column(t: PropertyTable, j: number): Float64Array {
  const n = t.formats.length;
  return Float64Array.from({ length: n }, (_, i) => t.values[i * PROPERTY_COUNT + j]!);
}

function checkTable(t: PropertyTable, what: string): void {
  if (t.values.length !== t.formats.length * PROPERTY_COUNT) throw new OodError('SHAPE_MISMATCH', `${what}: expected ${t.formats.length}x${PROPERTY_COUNT} property values, got ${t.values.length}`);
}

/** Histogram counts of transformed values against inner edges: [under, ...inner, over, missing]. */
export function binCounts(edges: readonly number[], transformed: ArrayLike<number>): number[] {
  const inner = edges.length - 1;
  const c = new Array<number>(inner + 3).fill(0);
  const lo = edges[0]!;
  const hi = edges[inner]!;
  const width = (hi - lo) / inner;
  for (let i = 0; i < transformed.length; i++) {
    const v = transformed[i]!;
    if (Number.isNaN(v)) c[inner + 2]! += 1;
    else if (v < lo) c[0]! += 1;
    else if (v >= hi) c[inner + 1]! += 1;
    else c[1 + Math.min(inner - 1, Math.floor((v - lo) / width))]! += 1;
  }
  return c;
}

/** Fits the conditions model: centre and scale on the training split, bins and ID counts on the holdout. */
export function fitConditions(train: PropertyTable, holdout: PropertyTable): ConditionsModel {
  checkTable(train, 'conditions (training split)');
  checkTable(holdout, 'conditions (holdout)');
  if (train.formats.length === 0 || holdout.formats.length === 0) throw new OodError('CONFIG_INVALID', 'conditions: the training split and the holdout need images with properties');
  const properties = PROPERTY_NAMES.map((name, j): PropertyStats => {
    const spec = PROPERTY_SPECS[name];
    const tr = Float64Array.from(column(train, j), (v) => transformValue(name, v)).filter((v) => !Number.isNaN(v)).sort();
    const present = tr.length / train.formats.length;
    let centre = Number.NaN;
    let scale = spec.floor;
    if (tr.length > 0) {
      centre = quantileSorted(tr, 0.5);
      if (spec.transform === 'binary') {
        const ones = tr.reduce((s, v) => s + (v > 0.5 ? 1 : 0), 0);
        const p = (ones + 1) / (tr.length + 2);
        centre = ones / tr.length > 0.5 ? 1 : 0;
        scale = Math.max(spec.floor, Math.sqrt(p * (1 - p)));
      } else {
        const dev = Float64Array.from(tr, (v) => Math.abs(v - centre)).sort();
        scale = Math.max(spec.floor, 1.4826 * quantileSorted(dev, 0.5));
      }
    }
    const ho = Float64Array.from(column(holdout, j), (v) => transformValue(name, v));
    const hoFinite = ho.filter((v) => !Number.isNaN(v)).sort();
    // Bins over the holdout's 0.5-99.5% range, widened by a tenth each side; at least +-4 scales
    // around the centre (a property that never varies still gets bins a shift can fall into).
    const c = Number.isNaN(centre) ? (hoFinite.length > 0 ? quantileSorted(hoFinite, 0.5) : 0) : centre;
    let lo = hoFinite.length > 0 ? quantileSorted(hoFinite, 0.005) : c;
    let hi = hoFinite.length > 0 ? quantileSorted(hoFinite, 0.995) : c;
    const pad = (hi - lo) * 0.1;
    lo = Math.min(lo - pad, c - 4 * scale);
    hi = Math.max(hi + pad, c + 4 * scale);
    const edges = Array.from({ length: PROPERTY_BINS + 1 }, (_, i) => lo + ((hi - lo) * i) / PROPERTY_BINS);
    const raw = column(holdout, j).filter((v) => Number.isFinite(v)).sort();
    const idMean = hoFinite.length > 0 ? hoFinite.reduce((a, b) => a + b, 0) / hoFinite.length : Number.NaN;
    return { name, centre, scale, present, edges, idCounts: binCounts(edges, ho), idMedian: raw.length > 0 ? quantileSorted(raw, 0.5) : Number.NaN, idMean };
  });
  const idFormats: Record<string, number> = {};
  for (const f of holdout.formats) idFormats[f] = (idFormats[f] ?? 0) + 1;
  return { version: 1, properties, idFormats, holdoutCount: holdout.formats.length };
}

/** The capped z of one value of a property. */
export function propertyZ(stats: PropertyStats, value: number): number {
  const t = transformValue(stats.name, value);
  const idHas = stats.present >= 0.5;
  if (Number.isNaN(t)) return idHas ? Z_MISMATCH : 0;
  if (!idHas || Number.isNaN(stats.centre)) return Z_MISMATCH;
  const z = (t - stats.centre) / stats.scale;
  return Math.max(-Z_CAP, Math.min(Z_CAP, z));
}

export interface ConditionsScores {
  /** Per image, max over the properties of |z|. */
  readonly score: Float32Array;
  /** Per image, the index (PROPERTY_NAMES) of the property with the largest |z|. */
  readonly worst: Uint8Array;
}

/** The conditions score of every row of a property table. */
export function conditionsScores(model: ConditionsModel, t: PropertyTable): ConditionsScores {
  checkTable(t, 'conditions scoring');
  if (model.properties.length !== PROPERTY_COUNT) throw new OodError('MODEL_INVALID', `conditions: the model has ${model.properties.length} properties, this ood-audit measures ${PROPERTY_COUNT}`);
  const n = t.formats.length;
  const score = new Float32Array(n);
  const worst = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = -1;
    for (let j = 0; j < PROPERTY_COUNT; j++) {
      const z = Math.abs(propertyZ(model.properties[j]!, t.values[i * PROPERTY_COUNT + j]!));
      if (z > best) {
        best = z;
        worst[i] = j;
      }
    }
    score[i] = best;
  }
  return { score, worst };
}
