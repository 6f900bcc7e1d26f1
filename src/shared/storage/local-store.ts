/**
 * A local folder as an object store. Writes go to a temporary file in the same folder and are renamed
 * into place (atomic on POSIX). Keys that would escape the root (`..`, absolute paths, NUL) are
 * refused. The ETag is size + mtime: cheap, and changes whenever the file is rewritten. Reads are
 * bounded: a file larger than the cap is refused before any byte is read.
 */
import { copyFile, mkdir, open, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { OodError } from '../errors.js';
import { compareKeys, MAX_OBJECT_BYTES, tooLarge, type GetOptions, type ListEntry, type ObjectInfo, type ObjectStore } from './object-store.js';

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function etagOf(size: number, mtimeMs: number): string {
  return `${size.toString(16)}-${Math.floor(mtimeMs * 1000).toString(16)}`;
}

/** A file name that is not UTF-8, printable: its bytes outside printable ASCII as \xNN. */
function escapeName(raw: Buffer): string {
  return [...raw].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

/**
 * mkdir -p, one level at a time from the nearest existing folder. (Node's recursive mkdir loops
 * forever under /proc, where mkdir fails with ENOENT: a scan into such an --out would hang.)
 */
async function mkdirs(dir: string): Promise<void> {
  const missing: string[] = [];
  let d = dir;
  for (;;) {
    try {
      if ((await stat(d)).isDirectory()) break;
      throw Object.assign(new Error(`${d} is not a folder`), { code: 'ENOTDIR' });
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
    }
    missing.unshift(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const m of missing) {
    try {
      await mkdir(m);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
  }
}

function unreadable(full: string, err: unknown): OodError {
  return new OodError('OBJECT_UNREADABLE', `${full}: ${errno(err) ?? 'error'}: ${(err as Error).message.replace(/^[A-Z]+: /, '')}`, { cause: err });
}

export function assertSafeKey(key: string): void {
  if (key.includes('\0')) throw new OodError('KEY_UNSAFE', `unsafe object key ${JSON.stringify(key)}: contains NUL`);
  if (key.startsWith('/') || /^[A-Za-z]:[\\/]/.test(key)) throw new OodError('KEY_UNSAFE', `unsafe object key ${JSON.stringify(key)}: absolute path`);
  if (key.split(/[\\/]/).some((seg) => seg === '..')) throw new OodError('KEY_UNSAFE', `unsafe object key ${JSON.stringify(key)}: contains '..'`);
}

function notFound(uri: string, err: unknown): OodError {
  return new OodError('NOT_FOUND', `${uri}: no such file or folder`, { cause: err });
}

/** Stats of one folder's entries in flight at once while listing. */
const STAT_CONCURRENCY = 64;

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

  /**
   * Every file under `prefix`, in key order, streamed: a depth-first walk that sorts each folder's
   * entries (a folder by its name + '/', so the walk yields keys in global order) and holds one
   * folder's entries at a time. Symbolic links are followed (a local "lake" is often a tree of
   * links), but each real folder is listed once: a link back to a listed folder is a skipped entry,
   * not a loop. Entries that cannot be objects are yielded as skipped with the reason: names that are
   * not UTF-8, special files (FIFO, socket, device), broken or looping links, unreadable folders.
   */
  async *list(prefix: string): AsyncIterable<ListEntry> {
    if (prefix !== '') assertSafeKey(prefix);
    // List the deepest folder the prefix names, then filter by the full prefix.
    const slash = prefix.lastIndexOf('/');
    const baseRel = slash >= 0 ? prefix.slice(0, slash) : '';
    const base = this.resolve(baseRel);
    let baseReal: string;
    try {
      baseReal = await realpath(base);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw err;
    }
    const listed = new Set<string>([baseReal]);
    yield* this.walk(base, baseRel, prefix, listed);
  }

  private async *walk(dir: string, rel: string, prefix: string, listed: Set<string>): AsyncGenerator<ListEntry> {
    let names: Buffer[];
    try {
      names = await readdir(dir, { encoding: 'buffer' });
    } catch (err) {
      yield { key: `${rel}/`, skipped: `folder cannot be read (${errno(err) ?? (err as Error).message})` };
      return;
    }
    type Entry = { name: string; key: string; full: string; kind: 'file' | 'dir' | 'skip'; size: number; mtimeMs: number; reason: string };
    const entries: Entry[] = [];
    const toStat: { name: string; key: string; full: string }[] = [];
    for (const raw of names) {
      const name = raw.toString('utf8');
      const key = rel === '' ? name : `${rel}/${name}`;
      if (!Buffer.from(name, 'utf8').equals(raw)) {
        const shown = rel === '' ? escapeName(raw) : `${rel}/${escapeName(raw)}`;
        if (shown.startsWith(prefix) || prefix.startsWith(shown)) entries.push({ name, key: shown, full: '', kind: 'skip', size: 0, mtimeMs: 0, reason: 'file name is not valid UTF-8' });
        continue;
      }
      if (name.startsWith('.ood-tmp-')) continue;
      toStat.push({ name, key, full: path.join(dir, name) });
    }
    const statOne = async ({ name, key, full }: { name: string; key: string; full: string }): Promise<Entry> => {
      let st;
      try {
        st = await stat(full);
      } catch (err) {
        const code = errno(err);
        const reason = code === 'ELOOP' ? 'symbolic link loop' : code === 'ENOENT' ? 'broken symbolic link' : `cannot be read (${code ?? (err as Error).message})`;
        return { name, key, full, kind: 'skip', size: 0, mtimeMs: 0, reason };
      }
      if (st.isDirectory()) return { name, key, full, kind: 'dir', size: 0, mtimeMs: 0, reason: '' };
      if (st.isFile()) return { name, key, full, kind: 'file', size: st.size, mtimeMs: st.mtimeMs, reason: '' };
      return { name, key, full, kind: 'skip', size: 0, mtimeMs: 0, reason: `not a regular file (${st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'device' : 'special file'})` };
    };
    // Stats go in parallel (STAT_CONCURRENCY at a time): one at a time, a folder of thousands of files waits on each.
    for (let i = 0; i < toStat.length; i += STAT_CONCURRENCY) entries.push(...(await Promise.all(toStat.slice(i, i + STAT_CONCURRENCY).map(statOne))));
    const sortKey = (e: { key: string; kind: string }): string => (e.kind === 'dir' ? `${e.key}/` : e.key);
    entries.sort((a, b) => compareKeys(sortKey(a), sortKey(b)));
    for (const e of entries) {
      if (e.kind === 'dir') {
        const dirKey = `${e.key}/`;
        if (!(dirKey.startsWith(prefix) || prefix.startsWith(dirKey))) continue;
        const real = await realpath(e.full).catch(() => e.full);
        if (listed.has(real)) {
          yield { key: dirKey, skipped: 'folder listed already through another path (a link loop, or a second link to it)' };
          continue;
        }
        listed.add(real);
        yield* this.walk(e.full, e.key, prefix, listed);
      } else if (e.key.startsWith(prefix)) {
        if (e.kind === 'file') yield { key: e.key, size: e.size, etag: etagOf(e.size, e.mtimeMs) };
        else yield { key: e.key, skipped: e.reason };
      }
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Uint8Array> {
    const full = this.resolve(key);
    const maxBytes = options.maxBytes ?? MAX_OBJECT_BYTES;
    let fh;
    try {
      fh = await open(full, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') throw notFound(full, err);
      throw unreadable(full, err);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new OodError('OBJECT_UNREADABLE', `${full}: not a regular file`);
      if (st.size > maxBytes) throw tooLarge(full, st.size, maxBytes, options.limit);
      // Read what stat announced, and no more: a file that grows meanwhile cannot push past the cap.
      const buf = new Uint8Array(st.size);
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return off === buf.length ? buf : buf.subarray(0, off);
    } catch (err) {
      if (err instanceof OodError) throw err;
      throw unreadable(full, err);
    } finally {
      await fh.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.resolve(key));
      if (!s.isFile()) return undefined;
      return { key, size: s.size, etag: etagOf(s.size, s.mtimeMs) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    const full = this.resolve(key);
    const tmp = path.join(path.dirname(full), `.ood-tmp-${randomBytes(6).toString('hex')}-${path.basename(full)}`);
    try {
      await mkdirs(path.dirname(full));
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, full);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      // A folder that cannot be created or written does not heal by retrying: fail at once.
      throw new OodError('STORAGE_PERMANENT', `cannot write ${full}: ${errno(err) ?? 'error'}: ${(err as Error).message.replace(/^[A-Z]+: /, '')}`, { cause: err });
    }
  }

  async copy(from: string, to: string): Promise<void> {
    const src = this.resolve(from);
    const full = this.resolve(to);
    const tmp = path.join(path.dirname(full), `.ood-tmp-${randomBytes(6).toString('hex')}-${path.basename(full)}`);
    try {
      await mkdirs(path.dirname(full));
      await copyFile(src, tmp);
      await rename(tmp, full);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      if (errno(err) === 'ENOENT' && (await this.head(from)) === undefined) throw new OodError('NOT_FOUND', `${src}: no such file`, { cause: err });
      throw new OodError('STORAGE_PERMANENT', `cannot copy ${src} to ${full}: ${errno(err) ?? 'error'}: ${(err as Error).message.replace(/^[A-Z]+: /, '')}`, { cause: err });
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    if (!prefix.endsWith('/') || prefix.replace(/\/+$/, '') === '') throw new OodError('KEY_UNSAFE', `${this.uri}: refusing to delete ${JSON.stringify(prefix)} (not a sub-folder)`);
    const full = this.resolve(prefix.replace(/\/+$/, ''));
    await rm(full, { recursive: true, force: true }).catch((err: unknown) => {
      throw new OodError('STORAGE_PERMANENT', `cannot delete ${full}: ${errno(err) ?? 'error'}: ${(err as Error).message.replace(/^[A-Z]+: /, '')}`, { cause: err });
    });
  }

  async delete(key: string): Promise<void> {
    const full = this.resolve(key);
    await rm(full, { force: true }).catch((err: unknown) => {
      throw new OodError('STORAGE_PERMANENT', `cannot delete ${full}: ${errno(err) ?? 'error'}: ${(err as Error).message.replace(/^[A-Z]+: /, '')}`, { cause: err });
    });
  }
}
