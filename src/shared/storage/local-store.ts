/**
 * A local folder as an object store. Writes go to a temporary file in the same folder and are renamed
 * into place (atomic on POSIX). Keys that would escape the root (`..`, absolute paths, NUL) are
 * refused. The ETag is size + mtime: cheap, and changes whenever the file is rewritten.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { OodError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

export function assertSafeKey(key: string): void {
  if (key.includes('\0')) throw new OodError('KEY_UNSAFE', `unsafe object key ${JSON.stringify(key)}: contains NUL`);
  if (key.startsWith('/') || /^[A-Za-z]:[\\/]/.test(key)) throw new OodError('KEY_UNSAFE', `unsafe object key ${JSON.stringify(key)}: absolute path`);
  if (key.split(/[\\/]/).some((seg) => seg === '..')) throw new OodError('KEY_UNSAFE', `unsafe object key ${JSON.stringify(key)}: contains '..'`);
}

function notFound(uri: string, err: unknown): OodError {
  return new OodError('NOT_FOUND', `${uri}: no such file or folder`, { cause: err });
}

export class LocalStore implements ObjectStore {
  readonly root: string;
  readonly uri: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.uri = this.root;
  }

  private resolve(key: string): string {
    assertSafeKey(key);
    const full = path.resolve(this.root, key);
    if (full !== this.root && !full.startsWith(this.root + path.sep)) {
      throw new OodError('KEY_UNSAFE', `unsafe object key ${JSON.stringify(key)}: escapes ${this.root}`);
    }
    return full;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (prefix !== '') assertSafeKey(prefix);
    // List the deepest folder the prefix names, then filter by the full prefix.
    const slash = prefix.lastIndexOf('/');
    const baseRel = slash >= 0 ? prefix.slice(0, slash) : '';
    const base = this.resolve(baseRel);
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      for (const e of entries) {
        const full = path.join(dir, e.name);
        // Symbolic links are followed (a local "lake" is often a tree of links).
        const kind = e.isSymbolicLink() ? await stat(full).then((st) => (st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other'), () => 'other') : e.isDirectory() ? 'dir' : e.isFile() ? 'file' : 'other';
        if (kind === 'dir') await walk(full);
        else if (kind === 'file' && !e.name.startsWith('.ood-tmp-')) {
          const rel = path.relative(this.root, full).split(path.sep).join('/');
          if (rel.startsWith(prefix)) keys.push(rel);
        }
      }
    };
    await walk(base);
    keys.sort();
    for (const key of keys) {
      const info = await this.head(key);
      if (info !== undefined) yield info;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const full = this.resolve(key);
    try {
      const buf = await readFile(full);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(full, err);
      throw new OodError('STORAGE_PERMANENT', `${full}: ${(err as Error).message}`, { cause: err });
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.resolve(key));
      if (!s.isFile()) return undefined;
      return { key, size: s.size, etag: `${s.size.toString(16)}-${Math.floor(s.mtimeMs * 1000).toString(16)}` };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    const full = this.resolve(key);
    await mkdir(path.dirname(full), { recursive: true });
    const tmp = path.join(path.dirname(full), `.ood-tmp-${randomBytes(6).toString('hex')}-${path.basename(full)}`);
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, full);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.resolve(key), { force: true });
  }
}
