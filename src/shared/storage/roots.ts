/**
 * Worker roots: the locations a worker serves. Every location a job names (input, output, model,
 * work area, cache, scan state, a plugged-in encoder) must lie inside one of them, or the job fails
 * permanently with the reason: job data in Redis is input, and a job written by someone else must
 * not make a worker read or write anywhere its operator did not allow.
 *
 *   local root   an absolute folder: a location is inside when its real path (symbolic links
 *                resolved, through its nearest existing folder) is the root or below it
 *   S3 root      s3://bucket/ or s3://bucket/prefix/: a location in that bucket whose prefix starts
 *                with the root's prefix (at a folder boundary)
 */
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OodError } from '../errors.js';

function localPath(uri: string): string {
  return path.resolve(uri.startsWith('file://') ? fileURLToPath(uri) : uri);
}

/** The real path of `p`, resolving links through its nearest existing ancestor. */
function realPath(p: string): string {
  let existing = p;
  const rest: string[] = [];
  while (!existsSync(existing)) {
    const parent = path.dirname(existing);
    if (parent === existing) break;
    rest.unshift(path.basename(existing));
    existing = parent;
  }
  let real = existing;
  try {
    real = realpathSync(existing);
  } catch {
    // Unreadable ancestor: compare the resolved path as it is.
  }
  return path.join(real, ...rest);
}

function s3Parts(uri: string): { bucket: string; prefix: string } {
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+/, '');
  return { bucket, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}

/** Parses a comma-separated list of roots (OOD_WORKER_ROOTS, --roots). */
export function parseRoots(value: string, option: string): string[] {
  const roots = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const r of roots) {
    if (r.startsWith('s3://')) {
      if (s3Parts(r).bucket === '') throw new OodError('CONFIG_INVALID', `invalid ${option}: ${JSON.stringify(r)} names no bucket`);
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(r) && !r.startsWith('file://')) {
      throw new OodError('CONFIG_INVALID', `invalid ${option}: expected absolute folders or s3:// locations, got ${JSON.stringify(r)}`);
    } else if (!path.isAbsolute(r.startsWith('file://') ? fileURLToPath(r) : r)) {
      throw new OodError('CONFIG_INVALID', `invalid ${option}: expected absolute folders or s3:// locations, got ${JSON.stringify(r)}`);
    }
  }
  return roots;
}

export function isWithin(uri: string, root: string): boolean {
  if (uri.startsWith('s3://') || root.startsWith('s3://')) {
    if (!uri.startsWith('s3://') || !root.startsWith('s3://')) return false;
    const a = s3Parts(uri);
    const b = s3Parts(root);
    return a.bucket === b.bucket && a.prefix.startsWith(b.prefix);
  }
  const p = realPath(localPath(uri));
  const r = realPath(localPath(root));
  return p === r || p.startsWith(r.endsWith(path.sep) ? r : r + path.sep);
}

/** Throws PAYLOAD_INVALID unless `uri` lies inside one of `roots`. */
export function assertWithinRoots(uri: string, roots: readonly string[]): void {
  if (roots.some((r) => isWithin(uri, r))) return;
  const allowed = roots.length > 0 ? roots.join(', ') : 'none configured';
  throw new OodError('PAYLOAD_INVALID', `location ${JSON.stringify(uri)} is outside this worker's roots (${allowed}); set OOD_WORKER_ROOTS or --roots to serve it`);
}
