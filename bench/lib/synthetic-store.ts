/**
 * A synthetic object store for planning benchmarks: `count` objects listed in key order
 * (d00000/i0000000.png ...), generated as the listing goes, so a listing of ten million objects
 * needs no files. Reads return one tiny PNG; writes are refused (it is an input).
 */
import type { GetOptions, ListEntry, ObjectInfo, ObjectStore } from '../../src/shared/storage/object-store.js';

export class SyntheticStore implements ObjectStore {
  readonly uri: string;

  constructor(
    private readonly count: number,
    private readonly png: Uint8Array,
  ) {
    this.uri = `synthetic://${count}`;
  }

  private keyOf(i: number): string {
    return `d${String(Math.floor(i / 1000)).padStart(5, '0')}/i${String(i).padStart(8, '0')}.png`;
  }

  async *list(prefix: string): AsyncIterable<ListEntry> {
    for (let i = 0; i < this.count; i++) yield { key: `${prefix}${this.keyOf(i)}`, size: this.png.length, etag: `"${(i % 256).toString(16)}"` };
  }

  async get(_key: string, _options?: GetOptions): Promise<Uint8Array> {
    return this.png;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return { key, size: this.png.length, etag: '"0"' };
  }

  put(): Promise<void> {
    return Promise.reject(new Error('synthetic store: read-only'));
  }

  copy(): Promise<void> {
    return this.put();
  }

  delete(): Promise<void> {
    return this.put();
  }

  deletePrefix(): Promise<void> {
    return this.put();
  }
}
