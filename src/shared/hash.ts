/**
 * The project's hashes, in one place: sha256 of bytes (weights, image content) and a short stable
 * hash of JSON-serialisable values (run ids, cache keys, fingerprints). Both are content hashes:
 * the same input gives the same value in every process and on every machine.
 */
import { createHash } from 'node:crypto';

/** Hex sha256 of bytes or a UTF-8 string. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A short (16 hex digits, 64 bits) hash of the JSON of `parts`: ids and cache keys. */
export function stableHash(...parts: unknown[]): string {
  return sha256Hex(JSON.stringify(parts)).slice(0, 16);
}
