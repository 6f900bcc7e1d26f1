import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/shared/image/decode.js';
import { isImageKey } from '../../src/shared/image/kinds.js';
import { backfillProperties, extractFeatures } from '../../src/shared/extract.js';
import { OodError } from '../../src/shared/errors.js';
import { makeFingerprint, type Encoder } from '../../src/shared/encoder/encoder.js';
import { hugePngHeader, solidImage, textAsPng, truncatedJpeg } from '../helpers/images.js';

/** A stand-in encoder (its features: the first two bytes of each image), batches of 2. */
function standInEncoder(): Encoder {
  return {
    fingerprint: makeFingerprint({ encoder: 'test', weightsSha256: '0', taps: ['t'], inputSize: 8, preprocessing: { kind: 'unit' }, pooling: 'gap' }),
    stages: [{ name: 't', channels: 2 }],
    featureSize: 2,
    inputSize: 8,
    batchSize: 2,
    runtime: 'test',
    encode: (images) => Promise.resolve(Float32Array.from(images.flatMap((img) => [img[0]!, img[1]!]))),
    dispose: () => undefined,
  };
}

describe('decodeImage', () => {
  it('decodes RGB, greyscale and RGBA images to size x size x 3', async () => {
    for (const [fmt, ch] of [['jpeg', 3], ['png', 1], ['png', 4], ['webp', 3]] as const) {
      const r = await decodeImage(`a.${fmt}`, await solidImage(fmt, 40, 28, ch), { size: 32 });
      expect(r.ok, `${fmt}/${ch}`).toBe(true);
      if (r.ok) expect(r.pixels.length).toBe(32 * 32 * 3);
    }
  });

  it('expands greyscale to three equal channels', async () => {
    const r = await decodeImage('g.png', await solidImage('png', 16, 16, 1), { size: 16 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    for (let i = 0; i < r.pixels.length; i += 3) {
      expect(r.pixels[i]).toBe(r.pixels[i + 1]);
      expect(r.pixels[i]).toBe(r.pixels[i + 2]);
    }
  });

  it('reports broken files by key with the decoder reason', async () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['trunc.jpg', await truncatedJpeg(), /premature end|corrupt|truncat/i],
      ['empty.jpg', new Uint8Array(0), /empty file/],
      ['text.png', textAsPng(), /unsupported image format/i],
      ['bomb.png', hugePngHeader(), /pixel limit/i],
    ];
    for (const [key, data, reason] of cases) {
      const r = await decodeImage(key, data, { size: 32 });
      expect(r.ok, key).toBe(false);
      if (!r.ok) {
        expect(r.key).toBe(key);
        expect(r.reason).toMatch(reason);
      }
    }
  });

  it('keeps order and isolates failures in a batch', async () => {
    const good = await solidImage('jpeg', 20, 20);
    const files = new Map([['a.jpg', good], ['b.jpg', new Uint8Array(0)], ['c.jpg', good]]);
    // A stand-in encoder: the batching and failure handling are under test.
    const encoder = standInEncoder();
    const set = await extractFeatures(encoder, [...files.keys()].map((key) => ({ key })), async (k) => files.get(k)!);
    expect(set.keys).toEqual(['a.jpg', 'c.jpg']);
    expect(set.failures.map((f) => f.key)).toEqual(['b.jpg']);
    expect(set.features).toHaveLength(4);
  });

  it('measures properties while extracting, and backfills them for a set cached before them', async () => {
    const good = await solidImage('jpeg', 20, 10);
    const files = new Map([['a.jpg', good], ['c.jpg', good]]);
    const encoder = standInEncoder();
    const read = async (k: string): Promise<Uint8Array> => {
      const f = files.get(k);
      if (f === undefined) throw new OodError('NOT_FOUND', `${k}: not found`);
      return f;
    };
    const set = await extractFeatures(encoder, [...files.keys()].map((key) => ({ key })), read);
    expect(set.properties?.formats).toEqual(['jpeg', 'jpeg']);
    expect(set.properties?.values[0]).toBe(20); // width
    const back = await backfillProperties(set, read);
    expect(Array.from(back!.values)).toEqual(Array.from(set.properties!.values));
    expect(await backfillProperties({ ...set, keys: ['a.jpg', 'gone.jpg'] }, read)).toBeUndefined();
    expect((await extractFeatures(encoder, [{ key: 'a.jpg' }], read, { properties: false })).properties).toBeUndefined();
  });

  it('recognises image keys by extension', () => {
    expect(isImageKey('x/y/IMG_1.JPG')).toBe(true);
    expect(isImageKey('x/y/readme.txt')).toBe(false);
    expect(isImageKey('noext')).toBe(false);
  });
});
