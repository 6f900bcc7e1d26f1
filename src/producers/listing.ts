/**
 * Listing the images under a store prefix: image files by extension, in key order; every other
 * entry (a file that is not an image by its extension, and whatever the store could not list as an
 * object: special files, link loops, names that are not UTF-8) is kept with the reason it was
 * skipped, never silently dropped.
 */
import { isImageKey } from '../shared/image/kinds.js';
import { SKIP_REASONS } from '../shared/outputs/accounting.js';
import { isSkipped, type ObjectInfo, type ObjectStore, type SkippedEntry } from '../shared/storage/object-store.js';

export interface ImageListing {
  readonly images: ObjectInfo[];
  /** Every other entry under the prefix, with the reason. */
  readonly skipped: SkippedEntry[];
}

/** Lists a location; every key is relative to the location's prefix (the same image has the same key in any store). */
export async function listImages(store: ObjectStore, prefix: string): Promise<ImageListing> {
  const images: ObjectInfo[] = [];
  const skipped: SkippedEntry[] = [];
  for await (const entry of store.list(prefix)) {
    const key = entry.key.slice(prefix.length);
    if (isSkipped(entry)) skipped.push({ key, skipped: entry.skipped });
    else if (isImageKey(key)) images.push({ ...entry, key });
    else skipped.push({ key, skipped: SKIP_REASONS.notImage });
  }
  images.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { images, skipped };
}

/** Counts per reason. */
export function countByReason(skipped: readonly SkippedEntry[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of skipped) out[s.skipped] = (out[s.skipped] ?? 0) + 1;
  return out;
}
