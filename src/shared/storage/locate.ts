/**
 * Turns a location string into a store and a key prefix: `s3://bucket/prefix/` (S3 or any
 * S3-compatible endpoint) or a local folder given as a plain path or `file://` URL.
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OodError } from '../errors.js';
import { LocalStore } from './local-store.js';
import type { ObjectStore } from './object-store.js';

export interface Location {
  readonly store: ObjectStore;
  readonly prefix: string;
  /** The location as given, for messages. */
  readonly uri: string;
}

export interface LocateOptions {
  /** The folder must already exist (inputs); outputs are created on first write. */
  readonly mustExist: boolean;
  /** Opens an s3:// location (provided by the S3 adapter). */
  readonly openS3?: (bucket: string, prefix: string) => ObjectStore;
}

export function locate(uri: string, options: LocateOptions): Location {
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (bucket === '') throw new OodError('CONFIG_INVALID', `invalid location ${JSON.stringify(uri)}: no bucket name`);
    if (options.openS3 === undefined) throw new OodError('CONFIG_INVALID', `${uri}: S3 locations are not available here`);
    // A location is a folder: its keys are the objects below `prefix/`.
    const folder = prefix.replace(/^\/+/, '');
    return { store: options.openS3(bucket, ''), prefix: folder === '' || folder.endsWith('/') ? folder : `${folder}/`, uri };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith('file://')) {
    throw new OodError('CONFIG_INVALID', `unsupported location ${JSON.stringify(uri)}: expected a folder path, file:// or s3://`);
  }
  const dir = uri.startsWith('file://') ? fileURLToPath(uri) : uri;
  if (options.mustExist) {
    if (!existsSync(dir)) throw new OodError('NOT_FOUND', `${dir}: no such folder`);
    if (!statSync(dir).isDirectory()) throw new OodError('NOT_FOUND', `${dir}: not a folder`);
  }
  return { store: new LocalStore(dir), prefix: '', uri };
}

/** Appends '/'-separated segments to a location string (s3:// URI, file:// URL or folder path). */
export function joinUri(base: string, ...parts: string[]): string {
  const tail = parts.filter((p) => p !== '').map((p) => p.replace(/^\/+|\/+$/g, '')).join('/');
  if (tail === '') return base;
  return `${base.replace(/\/+$/, '')}/${tail}`;
}
