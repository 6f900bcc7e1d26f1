/** Row subsets of feature sets for the benchmarks: the 5-vs-5 splits and evenly spaced limits. */
import { selectRows, type FeatureSet } from '../../src/shared/feature-set.js';
import { evenly } from '../../src/shared/sample.js';
import { classOf } from './data.js';

/** The CIFAR-10 5-vs-5 near-OOD splits: the ID classes of each. */
export const SPLITS: readonly (readonly [string, readonly string[]])[] = [
  ['first5', ['airplane', 'automobile', 'bird', 'cat', 'deer']],
  ['even', ['airplane', 'bird', 'deer', 'frog', 'ship']],
  ['animals', ['bird', 'cat', 'deer', 'dog', 'frog']],
];

export const subset = selectRows;

export const indicesWhere = (set: FeatureSet, pred: (k: string) => boolean): number[] => set.keys.flatMap((k, i) => (pred(k) ? [i] : []));

/** The rows of `set` whose class is (`inId`) or is not one of `classes`. */
export const classRows = (set: FeatureSet, classes: readonly string[], inId: boolean): FeatureSet => subset(set, indicesWhere(set, (k) => classes.includes(classOf(k)) === inId));

/** At most `limit` rows, evenly spread (all of them without a limit). */
export function limitTrain(set: FeatureSet, limit: number | undefined): FeatureSet {
  if (limit === undefined || set.keys.length <= limit) return set;
  return subset(set, evenly(set.keys.map((_, i) => i), limit));
}
