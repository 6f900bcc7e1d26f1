/**
 * Image properties: what an image's own pixels and file say about how it was taken and stored
 * (imaging conditions), measured per image at decode time, next to the semantic features.
 *
 * File-level properties come from sharp's metadata (width and height after EXIF orientation,
 * format) and the file itself (bytes per pixel; the JPEG quality estimated from the quantisation
 * tables of its DQT segments). Pixel properties are computed in one pass over a fixed working image
 * of WORKING_SIZE x WORKING_SIZE pixels, area-resampled from the pixels the encoder is given: the
 * image the model sees, at a size that does not depend on the encoder (sharpness and noise are
 * per-pixel measures, so they are only comparable at a fixed size). One JavaScript pass over 4,096
 * pixels costs microseconds; sharp's own stats() would run a second libvips pipeline per image.
 *
 * Definitions (Y = 0.299 R + 0.587 G + 0.114 B, pixel values 0..255 unless said):
 *   brightness     mean of Y / 255, 0..1
 *   contrast       RMS contrast: population standard deviation of Y / 255
 *   saturation     mean HSV saturation (max - min) / max per pixel (0 where max = 0), 0..1
 *   colourfulness  Hasler & Suesstrunk (2003): sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2),
 *                  rg = R - G, yb = (R + G) / 2 - B
 *   sharpness      variance of the 4-neighbour Laplacian of Y over the interior pixels
 *   noise          Immerkaer (1996) fast noise sigma: sqrt(pi/2) / (6 (W-2)(H-2)) * sum |Y * N|,
 *                  N = [1 -2 1; -2 4 -2; 1 -2 1]
 *   entropy        Shannon entropy (bits) of the 256-bin histogram of round(Y)
 *   grayscale      1 when the mean per-pixel channel spread max(R,G,B) - min(R,G,B) is at most 2
 *   jpegQuality    the IJG quality 1..100 whose scaled standard table is nearest to the file's
 *                  luminance table (exact for libjpeg-made files); NaN for other formats
 * No sharp and no tfjs here: the CLI and reports read the names and types.
 */
import { concatFloat32 } from '../typed-arrays.js';

/** Side of the working image the pixel properties are measured on. */
export const WORKING_SIZE = 64;

/** The numeric properties, in the order of a property vector. */
export const PROPERTY_NAMES = ['width', 'height', 'aspect', 'bytesPerPixel', 'brightness', 'contrast', 'saturation', 'colourfulness', 'sharpness', 'noise', 'entropy', 'jpegQuality', 'grayscale'] as const;
export type PropertyName = (typeof PROPERTY_NAMES)[number];
export const PROPERTY_COUNT = PROPERTY_NAMES.length;

export type ImageProperties = Readonly<Record<PropertyName, number>> & { readonly format: string };

/** The pixel properties (measured on the working image). */
export type PixelProperties = Pick<ImageProperties, 'brightness' | 'contrast' | 'saturation' | 'colourfulness' | 'sharpness' | 'noise' | 'entropy' | 'grayscale'>;

/** Properties of many images: row-major [n, PROPERTY_COUNT] (PROPERTY_NAMES order) and each image's format. */
export interface PropertyTable {
  readonly values: Float32Array;
  readonly formats: readonly string[];
}

export function propertyVector(p: ImageProperties): Float32Array {
  return Float32Array.from(PROPERTY_NAMES, (n) => p[n]);
}

/** Builds a property table from per-image properties, in order. */
export function propertyTable(props: readonly ImageProperties[]): PropertyTable {
  const values = new Float32Array(props.length * PROPERTY_COUNT);
  props.forEach((p, i) => values.set(propertyVector(p), i * PROPERTY_COUNT));
  return { values, formats: props.map((p) => p.format) };
}

/** The given rows of a property table, in that order. */
export function selectProperties(t: PropertyTable, rows: readonly number[]): PropertyTable {
  const values = new Float32Array(rows.length * PROPERTY_COUNT);
  rows.forEach((r, i) => values.set(t.values.subarray(r * PROPERTY_COUNT, (r + 1) * PROPERTY_COUNT), i * PROPERTY_COUNT));
  return { values, formats: rows.map((r) => t.formats[r]!) };
}

/** Property tables concatenated in order. */
export function concatProperties(ts: readonly PropertyTable[]): PropertyTable {
  return { values: concatFloat32(ts.map((t) => t.values)), formats: ts.flatMap((t) => t.formats) };
}

/** One property's column of a table. */
export function propertyColumn(t: PropertyTable, name: PropertyName): Float32Array {
  const j = PROPERTY_NAMES.indexOf(name);
  const n = t.formats.length;
  return Float32Array.from({ length: n }, (_, i) => t.values[i * PROPERTY_COUNT + j]!);
}

/**
 * Area resampling of an RGB image (side x side, row-major) to a w x w luma, R, G and B planes: each
 * output pixel is the coverage-weighted mean of the input pixels it covers (a plain copy when the
 * sizes are equal).
 */
export function workingPlanes(pixels: Uint8Array, side: number, w = WORKING_SIZE): { y: Float64Array; r: Float64Array; g: Float64Array; b: Float64Array } {
  // Per output index, the input indices it covers and their weights (the same on both axes).
  const scale = side / w;
  const first = new Int32Array(w);
  const count = new Int32Array(w);
  const weights: number[] = [];
  const offset = new Int32Array(w);
  for (let o = 0; o < w; o++) {
    const a = o * scale;
    const b = (o + 1) * scale;
    first[o] = Math.floor(a);
    offset[o] = weights.length;
    for (let i = Math.floor(a); i < Math.min(side, Math.ceil(b)); i++) weights.push(Math.max(0, Math.min(b, i + 1) - Math.max(a, i)) / scale);
    count[o] = weights.length - offset[o]!;
  }
  const wt = Float64Array.from(weights);
  // Separable: rows first (side x w x 3), then columns.
  const tmp = new Float64Array(side * w * 3);
  for (let y = 0; y < side; y++) {
    const row = y * side * 3;
    for (let o = 0; o < w; o++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < count[o]!; j++) {
        const k = row + (first[o]! + j) * 3;
        const f = wt[offset[o]! + j]!;
        r += f * pixels[k]!;
        g += f * pixels[k + 1]!;
        b += f * pixels[k + 2]!;
      }
      const t = (y * w + o) * 3;
      tmp[t] = r;
      tmp[t + 1] = g;
      tmp[t + 2] = b;
    }
  }
  const out = { y: new Float64Array(w * w), r: new Float64Array(w * w), g: new Float64Array(w * w), b: new Float64Array(w * w) };
  for (let o = 0; o < w; o++) {
    for (let x = 0; x < w; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < count[o]!; j++) {
        const k = ((first[o]! + j) * w + x) * 3;
        const f = wt[offset[o]! + j]!;
        r += f * tmp[k]!;
        g += f * tmp[k + 1]!;
        b += f * tmp[k + 2]!;
      }
      const i = o * w + x;
      out.r[i] = r;
      out.g[i] = g;
      out.b[i] = b;
      out.y[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    }
  }
  return out;
}

/** The pixel properties of a side x side RGB image, measured on its WORKING_SIZE working image. */
export function measureProperties(pixels: Uint8Array, side: number, w = WORKING_SIZE): PixelProperties {
  if (pixels.length !== side * side * 3) throw new RangeError(`measureProperties: expected ${side}x${side}x3 = ${side * side * 3} bytes, got ${pixels.length}`);
  const { y, r, g, b } = workingPlanes(pixels, side, w);
  const n = w * w;
  let sy = 0;
  let syy = 0;
  let sat = 0;
  let spread = 0;
  let srg = 0;
  let srg2 = 0;
  let syb = 0;
  let syb2 = 0;
  const hist = new Float64Array(256);
  for (let i = 0; i < n; i++) {
    const Y = y[i]!;
    sy += Y;
    syy += Y * Y;
    const R = r[i]!;
    const G = g[i]!;
    const B = b[i]!;
    const mx = Math.max(R, G, B);
    const mn = Math.min(R, G, B);
    if (mx > 0) sat += (mx - mn) / mx;
    spread += mx - mn;
    const rg = R - G;
    const yb = 0.5 * (R + G) - B;
    srg += rg;
    srg2 += rg * rg;
    syb += yb;
    syb2 += yb * yb;
    hist[Math.min(255, Math.max(0, Math.round(Y)))]! += 1;
  }
  const meanY = sy / n;
  const varY = Math.max(0, syy / n - meanY * meanY);
  const mrg = srg / n;
  const myb = syb / n;
  const vrg = Math.max(0, srg2 / n - mrg * mrg);
  const vyb = Math.max(0, syb2 / n - myb * myb);
  let entropy = 0;
  for (const c of hist) if (c > 0) entropy -= (c / n) * Math.log2(c / n);
  // Laplacian and Immerkaer's noise mask over the interior pixels.
  let sl = 0;
  let sl2 = 0;
  let sn = 0;
  const m = (w - 2) * (w - 2);
  for (let yy = 1; yy < w - 1; yy++) {
    for (let xx = 1; xx < w - 1; xx++) {
      const o = yy * w + xx;
      const c = y[o]!;
      const up = y[o - w]!;
      const dn = y[o + w]!;
      const lf = y[o - 1]!;
      const rt = y[o + 1]!;
      const lap = up + dn + lf + rt - 4 * c;
      sl += lap;
      sl2 += lap * lap;
      const diag = y[o - w - 1]! + y[o - w + 1]! + y[o + w - 1]! + y[o + w + 1]!;
      sn += Math.abs(diag - 2 * (up + dn + lf + rt) + 4 * c);
    }
  }
  const ml = m > 0 ? sl / m : 0;
  return {
    brightness: meanY / 255,
    contrast: Math.sqrt(varY) / 255,
    saturation: sat / n,
    colourfulness: Math.sqrt(vrg + vyb) + 0.3 * Math.sqrt(mrg * mrg + myb * myb),
    sharpness: m > 0 ? Math.max(0, sl2 / m - ml * ml) : 0,
    noise: m > 0 ? (Math.sqrt(Math.PI / 2) / (6 * m)) * sn : 0,
    entropy,
    grayscale: spread / n <= 2 ? 1 : 0,
  };
}

// ---- JPEG quality from the quantisation tables -------------------------------------------------

/** IJG standard luminance quantisation table (JPEG Annex K), natural (row-major) order. */
const STD_LUMA = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78,
  87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
/** IJG standard chrominance table, natural order. */
const STD_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, ...new Array<number>(32).fill(99)];
/** Zigzag position k -> natural index (DQT stores tables in zigzag order). */
const NATURAL_ORDER = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
];

/** libjpeg's jpeg_quality_scaling + jpeg_add_quant_table (baseline: entries clamped to 1..255). */
export function scaledTable(quality: number, chroma = false): number[] {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const s = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q;
  return (chroma ? STD_CHROMA : STD_LUMA).map((v) => Math.min(255, Math.max(1, Math.floor((v * s + 50) / 100))));
}

/** The quantisation tables of a JPEG's DQT segments, by table id, in natural order (undefined when not a JPEG). */
export function jpegQuantTables(data: Uint8Array): Map<number, number[]> | undefined {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) return undefined;
  const tables = new Map<number, number[]>();
  let p = 2;
  while (p + 4 <= data.length) {
    if (data[p] !== 0xff) return tables;
    const marker = data[p + 1]!;
    if (marker === 0xff) {
      p += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      p += 2;
      continue;
    }
    // Start of scan or end of image: every table that matters was defined before the first scan.
    if (marker === 0xda || marker === 0xd9) return tables;
    const len = (data[p + 2]! << 8) | data[p + 3]!;
    const end = p + 2 + len;
    if (len < 2 || end > data.length) return tables;
    if (marker === 0xdb) {
      let q = p + 4;
      while (q < end) {
        const pq = data[q]! >> 4;
        const id = data[q]! & 0x0f;
        const bytes = pq === 0 ? 64 : 128;
        if (q + 1 + bytes > end) break;
        const t = new Array<number>(64);
        for (let k = 0; k < 64; k++) t[NATURAL_ORDER[k]!] = pq === 0 ? data[q + 1 + k]! : (data[q + 1 + 2 * k]! << 8) | data[q + 2 + 2 * k]!;
        tables.set(id, t);
        q += 1 + bytes;
      }
    }
    p = end;
  }
  return tables;
}

/**
 * The IJG quality (1..100) of a JPEG: the quality whose scaled standard luminance table (or
 * chrominance table, when table 0 is missing) is nearest to the file's in summed absolute
 * difference. NaN when the data is not a JPEG or has no quantisation tables.
 */
export function estimateJpegQuality(data: Uint8Array): number {
  const tables = jpegQuantTables(data);
  if (tables === undefined) return Number.NaN;
  const luma = tables.get(0);
  const chroma = luma === undefined ? tables.get(1) : undefined;
  const t = luma ?? chroma;
  if (t === undefined) return Number.NaN;
  let best = Number.NaN;
  let bestErr = Number.POSITIVE_INFINITY;
  for (let q = 1; q <= 100; q++) {
    const ref = scaledTable(q, luma === undefined);
    let err = 0;
    for (let i = 0; i < 64; i++) err += Math.abs(ref[i]! - t[i]!);
    // Ties (clamped tables at very low quality): keep the higher quality.
    if (err <= bestErr) {
      bestErr = err;
      best = q;
    }
  }
  return best;
}

/** The file-level properties: from the image's oriented size, its format and its bytes. */
export function fileProperties(width: number, height: number, format: string, data: Uint8Array): Pick<ImageProperties, 'width' | 'height' | 'aspect' | 'bytesPerPixel' | 'jpegQuality' | 'format'> {
  return {
    width,
    height,
    aspect: height > 0 ? width / height : Number.NaN,
    bytesPerPixel: width * height > 0 ? data.byteLength / (width * height) : Number.NaN,
    jpegQuality: format === 'jpeg' ? estimateJpegQuality(data) : Number.NaN,
    format,
  };
}
