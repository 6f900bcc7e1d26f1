/**
 * The object-store contract shared by the local-folder and S3 implementations. Keys are
 * '/'-separated relative paths. `put` is atomic: a reader sees the old object or the whole new one,
 * never a partial write.
 */
import type { z } from 'zod';
import { OodError } from '../errors.js';

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Opaque change token (S3 ETag; size + mtime for local files). Never parse it. */
  readonly etag: string;
}

export interface ObjectStore {
  /** Root URI, for messages (never includes credentials). */
  readonly uri: string;
  /** All objects under `prefix`, in ascending key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  get(key: string): Promise<Uint8Array>;
  head(key: string): Promise<ObjectInfo | undefined>;
  put(key: string, data: Uint8Array | string): Promise<void>;
  delete(key: string): Promise<void>;
}

export async function getJson<T>(store: ObjectStore, key: string): Promise<T> {
  const text = new TextDecoder().decode(await store.get(key));
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new OodError('MODEL_INVALID', `${objectUri(store, key)}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

/**
 * Reads a JSON object and validates it against `schema` (files read back from storage are input
 * like job data): a bad file fails with one line naming it and the first offending field.
 */
export async function getValidJson<T>(store: ObjectStore, key: string, schema: z.ZodType<T>): Promise<T> {
  const r = schema.safeParse(await getJson<unknown>(store, key));
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new OodError('MODEL_INVALID', `${objectUri(store, key)}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** The full location of a key, for messages. */
export function objectUri(store: Pick<ObjectStore, 'uri'>, key: string): string {
  return `${store.uri.replace(/\/+$/, '')}/${key}`;
}

export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, JSON.stringify(value, null, 2) + '\n');
}

/** Joins key segments with single slashes. */
export function joinKey(...parts: string[]): string {
  return parts
    .filter((p) => p !== '')
    .map((p, i) => (i === 0 ? p.replace(/\/+$/, '') : p.replace(/^\/+|\/+$/g, '')))
    .join('/');
}
