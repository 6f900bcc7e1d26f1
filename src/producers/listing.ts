/**
 * Listing the entries under a store prefix as they come (page by page on S3, folder by folder
 * locally), in key order: image files by extension, and every other entry (a file that is not an
 * image by its extension, and whatever the store could not list as an object: special files, link
 * loops, names that are not UTF-8) with the reason it is skipped, never silently dropped. Keys are
 * relative to the prefix, so the same image has the same key in any store.
 */
import { isImageKey } from '../shared/image/kinds.js';
import { SKIP_REASONS } from '../shared/outputs/accounting.js';
import { OodError } from '../shared/errors.js';
import { compareKeys, isSkipped, type ObjectInfo, type ObjectStore, type SkippedEntry } from '../shared/storage/object-store.js';

export type ListedEntry = { readonly image: ObjectInfo } | { readonly skipped: SkippedEntry };

export async function* listEntries(store: ObjectStore, prefix: string): AsyncGenerator<ListedEntry> {
  let last: string | undefined;
  for await (const entry of store.list(prefix)) {
    const key = entry.key.slice(prefix.length);
    // Everything downstream (shards, state pages) relies on key order: refuse a store that breaks it.
    if (last !== undefined && compareKeys(key, last) <= 0) throw new OodError('STORAGE_PERMANENT', `listing of ${store.uri}/${prefix} is not in ascending key order (${JSON.stringify(last)} then ${JSON.stringify(key)})`);
    last = key;
    if (isSkipped(entry)) yield { skipped: { key, skipped: entry.skipped } };
    else if (isImageKey(key)) yield { image: { ...entry, key } };
    else yield { skipped: { key, skipped: SKIP_REASONS.notImage } };
  }
}
