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

/** A listed entry that cannot be read as an object (a FIFO, a link loop, a name that is not UTF-8...). */
export interface SkippedEntry {
  readonly key: string;
  /** Why it was not listed as an object. */
  readonly skipped: string;
}

export type ListEntry = ObjectInfo | SkippedEntry;

/**
 * The order of keys in a listing: by Unicode code point, which is the UTF-8 byte order S3 lists in
 * (JavaScript's `<` compares UTF-16 code units and differs for characters beyond U+FFFF).
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const surrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdfff;
    if (!surrogate(x) && !surrogate(y)) return x - y;
    return (a.codePointAt(i) ?? x) - (b.codePointAt(i) ?? y);
  }
  return a.length - b.length;
}

export function isSkipped(e: ListEntry): e is SkippedEntry {
  return 'skipped' in e;
}

/** The largest object any store reads (2 GiB - 1 bytes: Node reads no larger file into memory). */
export const MAX_OBJECT_BYTES = 2 ** 31 - 1;

/**
 * The largest JSON file read (model, scan state, settings, reports): 256 MiB. Ten million objects
 * give state files of a few MB; a larger file was not written by ood-audit, and a JSON text near
 * V8's string limit (~512 MiB) would fail with an obscure error after minutes of reading.
 */
export const MAX_JSON_BYTES = 256 * 1024 * 1024;

export interface GetOptions {
  /** Refuse (OBJECT_TOO_LARGE) an object larger than this, before reading it. Default MAX_OBJECT_BYTES. */
  readonly maxBytes?: number;
  /** Which limit maxBytes is, for the message (`(--max-bytes)`, `of a JSON file`, ...). */
  readonly limit?: string;
}

export function tooLarge(uri: string, size: number | 'unannounced', maxBytes: number, limit?: string): OodError {
  const what = size === 'unannounced' ? 'no length announced, and more bytes read than' : `${size} bytes, more than`;
  return new OodError('OBJECT_TOO_LARGE', `${uri}: ${what} the ${maxBytes}-byte limit${limit !== undefined ? ` ${limit}` : ''}`);
}

export interface ObjectStore {
  /** Root URI, for messages (never includes credentials). */
  readonly uri: string;
  /**
   * Everything under `prefix`, in ascending key order: the objects, and the entries that could not
   * be objects with the reason (never silently dropped).
   */
  list(prefix: string): AsyncIterable<ListEntry>;
  get(key: string, options?: GetOptions): Promise<Uint8Array>;
  head(key: string): Promise<ObjectInfo | undefined>;
  put(key: string, data: Uint8Array | string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Copies an object within the store (atomically at the destination, like put). */
  copy(from: string, to: string): Promise<void>;
  /** Deletes everything under `prefix` (a folder: it must end with '/'). */
  deletePrefix(prefix: string): Promise<void>;
}

/** How every JSON file is read: refused past MAX_JSON_BYTES before reading. */
export const JSON_GET: GetOptions = { maxBytes: MAX_JSON_BYTES, limit: 'of a JSON file' };

/** JSON text read from `uri`, parsed; text that is not JSON fails naming the file. */
export function parseJson<T>(bytes: Uint8Array, uri: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (err) {
    throw new OodError('MODEL_INVALID', `${uri}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

export async function getJson<T>(store: ObjectStore, key: string): Promise<T> {
  return parseJson<T>(await store.get(key, JSON_GET), objectUri(store, key));
}

/**
 * Reads a JSON object and validates it against `schema` (files read back from storage are input
 * like job data): a bad file fails with one line naming it and the first offending field.
 */
export async function getValidJson<T>(store: ObjectStore, key: string, schema: z.ZodType<T>): Promise<T> {
  return validJson(await getJson<unknown>(store, key), schema, objectUri(store, key));
}

/** A parsed JSON value checked against `schema`; else MODEL_INVALID naming `uri` and the first issue. */
export function validJson<T>(value: unknown, schema: z.ZodType<T>, uri: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new OodError('MODEL_INVALID', `${uri}: ${issueText(r.error)}`);
  return r.data;
}

/** A schema's first issue, as messages give it: `path: message` (`(root)` for the value itself). */
export function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`;
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
