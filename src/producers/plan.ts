/**
 * Planning a run: list the input prefix (image files only; other objects are counted), sort the keys,
 * cut deterministic shards and write each shard's manifest (keys, sizes, ETags) to the run's work
 * location. The run id is a hash of what determines the result, so planning the same run twice
 * gives the same id and the same shards.
 */
import { listImages } from '../shared/app/listing.js';
import { OodError } from '../shared/errors.js';
import { putJson, joinKey, type ObjectInfo } from '../shared/storage/object-store.js';
import type { Location } from '../shared/storage/locate.js';
import { stableHash, workKeys, type Shard } from '../shared/queue/contract.js';

export interface ShardManifest {
  readonly shard: number;
  readonly objects: readonly ObjectInfo[];
}

export interface Listing {
  readonly images: readonly ObjectInfo[];
  readonly skippedNonImages: number;
  /** Hash of every image key and ETag. */
  readonly hash: string;
}

export async function listInput(input: Location, allowEmpty = false): Promise<Listing> {
  const { images, skipped } = await listImages(input.store, input.prefix);
  if (images.length === 0 && !allowEmpty) throw new OodError('NOT_FOUND', `no images under ${input.uri} (${skipped.length} other files)`);
  return { images, skippedNonImages: skipped.length, hash: stableHash(images.map((o) => [o.key, o.etag])) };
}

export function cutShards(images: readonly ObjectInfo[], shardSize: number): ObjectInfo[][] {
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new OodError('CONFIG_INVALID', `invalid shard size: expected a positive integer, got ${shardSize}`);
  const shards: ObjectInfo[][] = [];
  for (let i = 0; i < images.length; i += shardSize) shards.push(images.slice(i, i + shardSize));
  return shards;
}

/** Writes the manifests (idempotent: same content, same keys) and returns the shard descriptors. */
export async function writeManifests(work: Location, shards: readonly ObjectInfo[][]): Promise<Shard[]> {
  const out: Shard[] = [];
  for (const [index, objects] of shards.entries()) {
    const manifestKey = joinKey(work.prefix, workKeys.manifest(index));
    const manifest: ShardManifest = { shard: index, objects };
    await putJson(work.store, manifestKey, manifest);
    out.push({ index, manifestKey, count: objects.length, contentHash: stableHash(objects.map((o) => [o.key, o.etag])) });
  }
  return out;
}
