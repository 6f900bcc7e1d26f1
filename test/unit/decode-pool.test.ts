import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeWithProperties, type DecodeResult } from '../../src/shared/image/decode.js';
import { DecodePool } from '../../src/shared/image/decode-pool.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { truncatedJpeg } from '../helpers/images.js';

const DEMO = path.resolve(import.meta.dirname, '../../examples/demo/id/bird');
const demoImages = (n: number): { key: string; bytes: Uint8Array }[] =>
  readdirSync(DEMO).sort().slice(0, n).map((f) => ({ key: `bird/${f}`, bytes: new Uint8Array(readFileSync(path.join(DEMO, f))) }));

/** Blocks this thread (as an encoder batch does) for `ms`. */
function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* busy */
  }
}

const pixelsOf = (r: DecodeResult): Uint8Array => (r.ok ? r.pixels : new Uint8Array(0));

describe('decode thread', () => {
  it('gives what decoding on this thread gives: pixels, properties, digest, failures by key', async () => {
    const pool = new DecodePool();
    try {
      const images = [...demoImages(4), { key: 'trunc.jpg', bytes: await truncatedJpeg() }];
      for (const { key, bytes } of images) {
        const here = await decodeWithProperties(key, bytes, { size: 64 });
        const there = await pool.decode(key, bytes, { size: 64 }, true);
        expect(there.digest).toBe(sha256Hex(bytes));
        expect(there.result.ok, key).toBe(here.ok);
        if (here.ok && there.result.ok) {
          expect(Buffer.from(pixelsOf(there.result)).equals(Buffer.from(here.pixels))).toBe(true);
          expect(there.result.properties).toEqual(here.properties);
        } else if (!here.ok && !there.result.ok) {
          expect(there.result.key).toBe(key);
          expect(there.result.reason).toBe(here.reason);
        }
        // The caller's bytes are not handed over: still readable.
        expect(bytes.byteLength).toBeGreaterThan(0);
      }
    } finally {
      await pool.close();
    }
  });

  it('decodes while this thread is blocked, as it is during an encoder batch', async () => {
    const images = demoImages(32);
    const opts = { size: 224 };
    // The same decodes on this thread, unblocked: their cost after a block would be at least this.
    let t = performance.now();
    await Promise.all(images.map((i) => decodeWithProperties(i.key, i.bytes, opts)));
    const onThisThread = performance.now() - t;

    const pool = new DecodePool();
    try {
      await pool.decode('warm-up', images[0]!.bytes, opts, true); // the thread's start-up is not under test
      const pending = Promise.all(images.map((i) => pool.decode(i.key, i.bytes, opts, true)));
      blockFor(Math.max(1500, 10 * onThisThread));
      t = performance.now();
      const results = await pending;
      const afterBlock = performance.now() - t;
      expect(results.every((r) => r.result.ok)).toBe(true);
      // Only the replies are left to receive: far less than decoding them would take.
      expect(afterBlock, `decode thread: ${afterBlock.toFixed(1)} ms after the block; decoding here takes ${onThisThread.toFixed(1)} ms`).toBeLessThan(onThisThread / 2);
    } finally {
      await pool.close();
    }
  });

  it('fails pending and later decodes with one line once the thread is gone', async () => {
    const pool = new DecodePool();
    const [img] = demoImages(1);
    const pending = pool.decode(img!.key, img!.bytes, { size: 224 }, true);
    await pool.close();
    await expect(pending).rejects.toThrow(/^image decode thread closed$/);
    await expect(pool.decode(img!.key, img!.bytes, { size: 224 }, true)).rejects.toThrow(/^image decode thread closed$/);
    expect(pool.dead).toBe(true);
  });
});
