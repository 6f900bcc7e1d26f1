/**
 * Listing the images under a store prefix: image files by extension, sorted; everything else is
 * counted and reported, never silently dropped.
 */
import { isImageKey } from '../image/decode.js';
import type { ObjectInfo, ObjectStore } from '../storage/object-store.js';

export interface ImageListing {
  readonly images: ObjectInfo[];
  /** Objects that are not images by extension. */
  readonly skipped: ObjectInfo[];
}

export async function listImages(store: ObjectStore, prefix: string): Promise<ImageListing> {
  const images: ObjectInfo[] = [];
  const skipped: ObjectInfo[] = [];
  for await (const obj of store.list(prefix)) (isImageKey(obj.key) ? images : skipped).push(obj);
  images.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { images, skipped };
}

/** A deterministic, evenly spread subset of at most `limit` items (keeps order). */
export function spreadSample<T>(items: readonly T[], limit: number | undefined): T[] {
  if (limit === undefined || items.length <= limit) return [...items];
  const out: T[] = [];
  for (let i = 0; i < limit; i++) out.push(items[Math.floor((i * items.length) / limit)]!);
  return out;
}
