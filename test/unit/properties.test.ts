import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { decodeWithProperties } from '../../src/shared/image/decode.js';
import { estimateJpegQuality, measureProperties, PROPERTY_NAMES, propertyVector, scaledTable, workingPlanes } from '../../src/shared/image/properties.js';

/** An RGB image from a function of (x, y) -> grey level or [r, g, b]. */
function image(side: number, f: (x: number, y: number) => number | readonly [number, number, number]): Uint8Array {
  const out = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const v = f(x, y);
      const [r, g, b] = typeof v === 'number' ? [v, v, v] : v;
      out.set([r, g, b], (y * side + x) * 3);
    }
  }
  return out;
}

// A checkerboard of 36 and 216, and its 3x3 box blur with wrap-around: each pixel becomes
// (5 * own + 4 * other) / 9, so 216 -> 136 and 36 -> 116, a checkerboard of 1/9 the amplitude.
const SIDE = 8;
const board = (a: number, b: number) => image(SIDE, (x, y) => ((x + y) % 2 === 0 ? a : b));
const SQRT_HALF_PI = Math.sqrt(Math.PI / 2);

describe('measureProperties (hand-computed values, working size = image size)', () => {
  it('flat grey: mid brightness, no contrast, no edges, no noise, zero entropy, greyscale', () => {
    const p = measureProperties(image(SIDE, () => 128), SIDE, SIDE);
    expect(p.brightness).toBeCloseTo(128 / 255, 9);
    expect(p.contrast).toBeCloseTo(0, 6);
    expect(p.saturation).toBe(0);
    expect(p.colourfulness).toBeCloseTo(0, 9);
    expect(p.sharpness).toBeCloseTo(0, 6);
    expect(p.noise).toBeCloseTo(0, 6);
    expect(p.entropy).toBe(0);
    expect(p.grayscale).toBe(1);
  });

  it('checkerboard 36/216: Laplacian +-4*180 everywhere, noise mask +-8*180, one bit of entropy', () => {
    const p = measureProperties(board(216, 36), SIDE, SIDE);
    expect(p.brightness).toBeCloseTo(126 / 255, 9);
    expect(p.contrast).toBeCloseTo(90 / 255, 9);
    expect(p.sharpness).toBeCloseTo(720 * 720, 4);
    expect(p.noise).toBeCloseTo(SQRT_HALF_PI * 1440 / 6, 6);
    expect(p.entropy).toBeCloseTo(1, 12);
    expect(p.saturation).toBe(0);
    expect(p.grayscale).toBe(1);
  });

  it('blurred copy (3x3 box): same brightness, 1/9 the contrast and noise, 1/81 the sharpness', () => {
    const sharpP = measureProperties(board(216, 36), SIDE, SIDE);
    const blurred = measureProperties(board(136, 116), SIDE, SIDE);
    expect(blurred.brightness).toBeCloseTo(126 / 255, 9);
    expect(blurred.contrast).toBeCloseTo(10 / 255, 9);
    expect(blurred.sharpness).toBeCloseTo(80 * 80, 4);
    expect(blurred.sharpness / sharpP.sharpness).toBeCloseTo(1 / 81, 9);
    expect(blurred.noise / sharpP.noise).toBeCloseTo(1 / 9, 9);
    expect(blurred.entropy).toBeCloseTo(1, 12);
  });

  it('darkened copy (x 0.5): half the brightness, contrast and noise, a quarter of the sharpness', () => {
    const p = measureProperties(board(216, 36), SIDE, SIDE);
    const d = measureProperties(board(108, 18), SIDE, SIDE);
    expect(d.brightness).toBeCloseTo(63 / 255, 9);
    expect(d.contrast / p.contrast).toBeCloseTo(0.5, 9);
    expect(d.noise / p.noise).toBeCloseTo(0.5, 9);
    expect(d.sharpness / p.sharpness).toBeCloseTo(0.25, 9);
    expect(d.entropy).toBeCloseTo(1, 12);
  });

  it('flat red: full saturation, Hasler-Suesstrunk colourfulness 0.3 * |(255, 127.5)|, not greyscale', () => {
    const p = measureProperties(image(SIDE, () => [255, 0, 0]), SIDE, SIDE);
    expect(p.saturation).toBe(1);
    expect(p.colourfulness).toBeCloseTo(0.3 * Math.hypot(255, 127.5), 9);
    expect(p.brightness).toBeCloseTo(0.299, 9);
    expect(p.grayscale).toBe(0);
  });

  it('the working image is an area average: a 1-pixel checkerboard at 16 px is flat at 8 px', () => {
    const planes = workingPlanes(image(16, (x, y) => ((x + y) % 2 === 0 ? 216 : 36)), 16, 8);
    for (const v of planes.y) expect(v).toBeCloseTo(126, 9);
    // Upsampling 8 -> 16 repeats each pixel (each output covers half an input pixel).
    const up = workingPlanes(board(216, 36), 8, 16);
    expect(up.r[0]).toBeCloseTo(216, 9);
    expect(up.r[1]).toBeCloseTo(216, 9);
    expect(up.r[2]).toBeCloseTo(36, 9);
  });

  it('refuses pixels of the wrong size', () => {
    expect(() => measureProperties(new Uint8Array(10), 4)).toThrow(/expected 4x4x3/);
  });
});

describe('JPEG quality and file properties', () => {
  const noiseRaw = (w: number, h: number): Buffer => {
    const raw = Buffer.alloc(w * h * 3);
    let s = 7;
    for (let i = 0; i < raw.length; i++) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      raw[i] = (s >> 16) & 0xff;
    }
    return raw;
  };

  it('scales the standard table like libjpeg (quality 50 is the table itself)', () => {
    expect(scaledTable(50).slice(0, 4)).toEqual([16, 11, 10, 16]);
    expect(scaledTable(100).every((v) => v === 1)).toBe(true);
  });

  it('recovers the quality a libjpeg encoder was given from the DQT tables', async () => {
    for (const q of [10, 20, 50, 75, 90, 95]) {
      const jpg = await sharp(noiseRaw(32, 32), { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: q }).toBuffer();
      expect(estimateJpegQuality(new Uint8Array(jpg)), `quality ${q}`).toBe(q);
    }
    const png = await sharp(noiseRaw(8, 8), { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
    expect(estimateJpegQuality(new Uint8Array(png))).toBeNaN();
    expect(estimateJpegQuality(new Uint8Array([0xff, 0xd8, 0xff]))).toBeNaN();
  });

  it('decodeWithProperties: oriented size, aspect, bytes per pixel, format, quality, and the pixel properties', async () => {
    // 40 x 20 stored, EXIF orientation 6 (rotate 90): the image is 20 wide and 40 high.
    const jpg = new Uint8Array(await sharp(noiseRaw(40, 20), { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 60 }).withMetadata({ orientation: 6 }).toBuffer());
    const r = await decodeWithProperties('a.jpg', jpg, { size: 32 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.properties!;
    expect([p.width, p.height, p.aspect, p.format, p.jpegQuality]).toEqual([20, 40, 0.5, 'jpeg', 60]);
    expect(p.bytesPerPixel).toBeCloseTo(jpg.byteLength / 800, 9);
    expect(p).toMatchObject(measureProperties(r.pixels, 32));
    expect(propertyVector(p)).toHaveLength(PROPERTY_NAMES.length);

    const png = new Uint8Array(await sharp(Buffer.alloc(16 * 16, 90), { raw: { width: 16, height: 16, channels: 1 } }).png().toBuffer());
    const g = await decodeWithProperties('g.png', png, { size: 16 });
    expect(g.ok && g.properties).toMatchObject({ format: 'png', width: 16, height: 16, grayscale: 1, jpegQuality: Number.NaN });
    const bad = await decodeWithProperties('e.jpg', new Uint8Array(0), { size: 16 });
    expect(bad).toEqual({ ok: false, key: 'e.jpg', reason: 'empty file (0 bytes)' });
  });
});
