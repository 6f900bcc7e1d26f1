/**
 * Image decoding with sharp: any format libvips reads -> RGB uint8, alpha removed, greyscale expanded,
 * EXIF orientation applied, resized to size x size (bilinear, aspect ratio not kept, as the encoders
 * were evaluated). `limitInputPixels` stays on so a decompression bomb is refused, and a truncated file
 * is an error, not junk pixels. A failure is a value (`DecodeFailure`) naming the key and sharp's
 * reason, so one bad file never sinks a batch. decodeWithProperties also measures the image's
 * properties (image/properties.ts) from the same sharp instance and the decoded pixels.
 */
import sharp, { type Sharp } from 'sharp';
import { fileProperties, measureProperties, type ImageProperties } from './properties.js';

export interface DecodedImage {
  readonly ok: true;
  readonly key: string;
  /** size * size * 3 bytes, row-major RGB. */
  readonly pixels: Uint8Array;
  /** The image's properties, when decoded with decodeWithProperties. */
  readonly properties?: ImageProperties;
}

export interface DecodeFailure {
  readonly ok: false;
  readonly key: string;
  readonly reason: string;
}

export type DecodeResult = DecodedImage | DecodeFailure;

export interface DecodeOptions {
  /** Output side in pixels. */
  readonly size: number;
  /** Largest accepted input, in pixels (width * height). Default: sharp's 268,402,689 (16383^2). */
  readonly limitInputPixels?: number;
}

function describe(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s+/g, ' ').trim() || 'unknown decoder error';
}

/** A sharp instance over `data` with the decode limits, collecting libvips warnings into `warnings`. */
export function openImage(data: Uint8Array, options: Pick<DecodeOptions, 'limitInputPixels'>, warnings: string[]): Sharp {
  return sharp(data, { limitInputPixels: options.limitInputPixels ?? 268_402_689, failOn: 'warning', sequentialRead: true }).on('warning', (w: string) => warnings.push(w));
}

/** The reason of a decode failure, from sharp's error and the warnings libvips gave before it. */
export function failureReason(err: unknown, warnings: readonly string[]): string {
  // Depending on timing libvips reports a damaged file as its own warning turned error, or only as
  // "Warning treated as error due to failOn setting": then the warnings say what was wrong.
  const reason = describe(err);
  if (/warning treated as error/i.test(reason)) return `corrupt or truncated image data (${warnings.slice(0, 3).join('; ') || reason})`;
  return reason;
}

/** The encoder's pixels of an opened image: oriented, sRGB, no alpha, size x size. */
async function toPixels(img: Sharp, key: string, size: number): Promise<DecodeResult> {
  const { data: raw, info } = await img.rotate().removeAlpha().toColourspace('srgb').resize(size, size, { fit: 'fill', kernel: 'linear' }).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || raw.byteLength !== size * size * 3) {
    return { ok: false, key, reason: `decoder produced ${info.channels} channels, ${raw.byteLength} bytes; expected 3 channels` };
  }
  return { ok: true, key, pixels: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
}

export async function decodeImage(key: string, data: Uint8Array, options: DecodeOptions): Promise<DecodeResult> {
  if (data.byteLength === 0) return { ok: false, key, reason: 'empty file (0 bytes)' };
  const warnings: string[] = [];
  try {
    return await toPixels(openImage(data, options, warnings), key, options.size);
  } catch (err) {
    return { ok: false, key, reason: failureReason(err, warnings) };
  }
}

/**
 * Decodes like decodeImage and measures the image's properties (properties.ts) on the way: the
 * header's oriented size and format from sharp's metadata of the same instance (no second decode),
 * the pixel properties from the decoded pixels.
 */
export async function decodeWithProperties(key: string, data: Uint8Array, options: DecodeOptions): Promise<DecodeResult> {
  if (data.byteLength === 0) return { ok: false, key, reason: 'empty file (0 bytes)' };
  const warnings: string[] = [];
  try {
    const img = openImage(data, options, warnings);
    const meta = await img.metadata();
    const decoded = await toPixels(img, key, options.size);
    if (!decoded.ok) return decoded;
    const file = fileProperties(meta.autoOrient.width, meta.autoOrient.height, meta.format, data);
    return { ...decoded, properties: { ...file, ...measureProperties(decoded.pixels, options.size) } };
  } catch (err) {
    return { ok: false, key, reason: failureReason(err, warnings) };
  }
}
