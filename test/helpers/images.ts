/** Synthetic test images made with sharp, and broken files of the kinds a data lake holds. */
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';

export async function solidImage(format: 'jpeg' | 'png' | 'webp', width: number, height: number, channels: 1 | 3 | 4 = 3, seed = 1): Promise<Uint8Array> {
  const raw = Buffer.alloc(width * height * channels);
  let s = seed;
  for (let i = 0; i < raw.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    raw[i] = (s >> 16) & 0xff;
  }
  const img = sharp(raw, { raw: { width, height, channels } });
  const out = format === 'jpeg' ? await img.jpeg().toBuffer() : format === 'png' ? await img.png().toBuffer() : await img.webp().toBuffer();
  return new Uint8Array(out);
}

/** A JPEG cut in half: "premature end of JPEG image". */
export async function truncatedJpeg(): Promise<Uint8Array> {
  const full = await solidImage('jpeg', 64, 64);
  return full.subarray(0, Math.floor(full.length / 2));
}

/** A PNG header claiming 30000 x 30000 pixels (a decompression bomb), with no real data. */
export function hugePngHeader(side = 30000): Uint8Array {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const chunk = (type: string, body: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length, 0);
    return Buffer.concat([len, Buffer.from(type), body, Buffer.from(crc32(Buffer.concat([Buffer.from(type), body])))]);
  };
  // A little real image data, then the end: the header alone is what matters.
  const idat = deflateSync(Buffer.alloc(1 + side * 3));
  return new Uint8Array(Buffer.concat([Buffer.from(sig), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]));
}

function crc32(buf: Buffer): number[] {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  c = ~c >>> 0;
  return [(c >>> 24) & 255, (c >>> 16) & 255, (c >>> 8) & 255, c & 255];
}

export const textAsPng = (): Uint8Array => new TextEncoder().encode('this is not an image, just text with a .png name\n');
