/** CIFAR-like image properties for tests: a 32 px JPEG at quality 75, natural variation in the pixel properties. */
import type { ImageProperties } from '../../src/shared/image/properties.js';
import type { Rng } from '../../src/shared/rng.js';

/** `over` changes some properties, given the drawn ones (e.g. darker: p => ({ brightness: p.brightness * 0.5 })). */
export function cifarLikeProperties(rng: Rng, over: (p: ImageProperties) => Partial<ImageProperties> = () => ({})): ImageProperties {
  const p: ImageProperties = {
    width: 32,
    height: 32,
    aspect: 1,
    bytesPerPixel: 1.1 * Math.exp(0.1 * rng.normal()),
    format: 'jpeg',
    brightness: 0.45 + 0.1 * rng.normal(),
    contrast: 0.2 + 0.04 * rng.normal(),
    saturation: 0.3 + 0.08 * rng.normal(),
    colourfulness: 30 + 8 * rng.normal(),
    sharpness: 200 * Math.exp(0.5 * rng.normal()),
    noise: 4 * Math.exp(0.3 * rng.normal()),
    entropy: 7 + 0.3 * rng.normal(),
    jpegQuality: 75,
    grayscale: 0,
  };
  return { ...p, ...over(p) };
}
