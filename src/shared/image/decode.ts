/**
 * Image decoding with sharp: any format libvips reads -> RGB uint8, alpha removed, greyscale expanded,
 * EXIF orientation applied, resized to size x size (bilinear, aspect ratio not kept, as the encoders
 * were evaluated). `limitInputPixels` stays on so a decompression bomb is refused, and a truncated file
 * is an error, not junk pixels. A failure is a value (`DecodeFailure`) naming the key and sharp's
 * reason, so one bad file never sinks a batch.
 */
import sharp from 'sharp';

export interface DecodedImage {
  readonly ok: true;
  readonly key: string;
  /** size * size * 3 bytes, row-major RGB. */
  readonly pixels: Uint8Array;
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

export async function decodeImage(key: string, data: Uint8Array, options: DecodeOptions): Promise<DecodeResult> {
  if (data.byteLength === 0) return { ok: false, key, reason: 'empty file (0 bytes)' };
  const warnings: string[] = [];
  try {
    const { data: raw, info } = await sharp(data, {
      limitInputPixels: options.limitInputPixels ?? 268_402_689,
      failOn: 'warning',
      sequentialRead: true,
    })
      .on('warning', (w: string) => warnings.push(w))
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .resize(options.size, options.size, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || raw.byteLength !== options.size * options.size * 3) {
      return { ok: false, key, reason: `decoder produced ${info.channels} channels, ${raw.byteLength} bytes; expected 3 channels` };
    }
    return { ok: true, key, pixels: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
  } catch (err) {
    // Depending on timing libvips reports a damaged file as its own warning turned error, or only as
    // "Warning treated as error due to failOn setting": then the warnings say what was wrong.
    const reason = describe(err);
    if (/warning treated as error/i.test(reason)) return { ok: false, key, reason: `corrupt or truncated image data (${warnings.slice(0, 3).join('; ') || reason})` };
    return { ok: false, key, reason };
  }
}
