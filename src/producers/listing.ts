/**
 * Listing the images under a store prefix: image files by extension, in key order; everything else
 * is counted and reported, never silently dropped.
 */
import { isImageKey } from '../shared/image/kinds.js';
import type { ObjectInfo, ObjectStore } from '../shared/storage/object-store.js';

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
