/**
 * Covariate-shift corruptions of CIFAR-10 test images at graded strengths, made with sharp and
 * re-encoded like the originals (32x32 JPEG quality 75, 4:2:0 chroma) so that only the corruption
 * differs, not the encoding (METHOD.md §6). The `jpeg` corruption is the exception: it is the encoding.
 */
import sharp, { type Sharp } from 'sharp';
import { Rng, seedFor } from '../../src/shared/rng.js';

export const CORRUPTIONS = ['blur', 'noise', 'jpeg', 'saturate', 'brightness', 'downscale'] as const;
export type Corruption = (typeof CORRUPTIONS)[number];
export const STRENGTHS = [1, 2, 3] as const;

const PARAMS: Record<Corruption, readonly number[]> = {
  blur: [0.6, 0.9, 1.3], // gaussian sigma, pixels
  noise: [6, 12, 24], // gaussian std, grey levels
  jpeg: [30, 15, 7], // JPEG quality
  saturate: [0.6, 0.3, 0.0], // saturation multiplier (0 = greyscale)
  brightness: [1.25, 1.5, 1.8], // brightness multiplier
  downscale: [24, 16, 12], // intermediate side, pixels
};

export function corruptionParam(kind: Corruption, strength: number): number {
  return PARAMS[kind][strength - 1]!;
}

async function reencode(img: Sharp, quality = 75): Promise<Buffer> {
  return img.jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false }).toBuffer();
}

export async function corrupt(data: Uint8Array, kind: Corruption, strength: number, key: string): Promise<Buffer> {
  const p = corruptionParam(kind, strength);
  const base = sharp(data).removeAlpha().toColourspace('srgb');
  const meta = await sharp(data).metadata();
  const w = meta.width ?? 32;
  const h = meta.height ?? 32;
  switch (kind) {
    case 'blur':
      return reencode(base.blur(p));
    case 'noise': {
      const { data: raw, info } = await base.raw().toBuffer({ resolveWithObject: true });
      const rng = new Rng(seedFor(strength, key));
      for (let i = 0; i < raw.length; i++) raw[i] = Math.max(0, Math.min(255, Math.round(raw[i]! + p * rng.normal())));
      return reencode(sharp(raw, { raw: { width: info.width, height: info.height, channels: 3 } }));
    }
    case 'jpeg':
      return reencode(base, p);
    case 'saturate':
      return reencode(base.modulate({ saturation: p }));
    case 'brightness':
      return reencode(base.modulate({ brightness: p }));
    case 'downscale': {
      const small = await base.resize(Math.round((p * w) / 32), Math.round((p * h) / 32), { kernel: 'linear', fit: 'fill' }).png().toBuffer();
      return reencode(sharp(small).resize(w, h, { kernel: 'linear', fit: 'fill' }));
    }
  }
}
