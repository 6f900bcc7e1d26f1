/**
 * The scan state of an input prefix: what the last completed scan of it with a model saw (every
 * image key with its ETag), where its outputs went and its flagged fraction. Incremental scans read
 * it to skip unchanged objects; the report compares with it. It lives in the model folder:
 * <model>/scans/<hash of the input URI>.json. Read back from storage, so validated like job data.
 */
import { z } from 'zod';
import { stableHash } from '../hash.js';
import { joinUri } from '../storage/locate.js';
import { getValidJson, type ObjectInfo, type ObjectStore } from '../storage/object-store.js';

export const scanStateSchema = z.object({
  runId: z.string(),
  finishedAt: z.string(),
  out: z.string(),
  flaggedFraction: z.number(),
  scored: z.number().int().min(0),
  /** key -> ETag of every image scanned then (including those carried over from earlier scans). */
  objects: z.record(z.string(), z.string()),
});
export type ScanState = z.infer<typeof scanStateSchema>;

/** Where the scan state of `inputUri` scanned with the model at `modelUri` lives. */
export function scanStateLocation(modelUri: string, inputUri: string): { uri: string; name: string } {
  return { uri: joinUri(modelUri, 'scans'), name: `${stableHash(inputUri)}.json` };
}

export async function readScanState(store: ObjectStore, key: string): Promise<ScanState | undefined> {
  if ((await store.head(key)) === undefined) return undefined;
  return getValidJson(store, key, scanStateSchema);
}

/** The objects of `listing` that are new or changed since `state`. */
export function changedSince(listing: readonly ObjectInfo[], state: ScanState | undefined): { changed: ObjectInfo[]; unchanged: number } {
  if (state === undefined) return { changed: [...listing], unchanged: 0 };
  const changed = listing.filter((o) => state.objects[o.key] !== o.etag);
  return { changed, unchanged: listing.length - changed.length };
}
