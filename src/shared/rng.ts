/**
 * Seeded randomness that does not depend on the tensor backend or on batch composition: xoshiro128**
 * for uniforms, Box-Muller for normals. Per-image noise is derived from (seed, image key), so an
 * image's score is the same whichever shard or batch it lands in.
 */
import { OodError } from './errors.js';

function splitmix32(a: number): () => number {
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | undefined;

  constructor(seed: number) {
    const sm = splitmix32(seed >>> 0);
    this.s0 = sm();
    this.s1 = sm();
    this.s2 = sm();
    this.s3 = sm();
    this.spare = undefined;
  }

  /** Snapshot of the generator state, for checkpoints (JSON-safe: no NaN). */
  state(): (number | null)[] {
    return [this.s0, this.s1, this.s2, this.s3, this.spare ?? null];
  }

  static fromState(state: readonly (number | null)[]): Rng {
    if (state.length < 4 || state.slice(0, 4).some((x) => typeof x !== 'number')) {
      throw new OodError('MODEL_INVALID', `invalid random generator state ${JSON.stringify(state)}`);
    }
    const r = new Rng(0);
    [r.s0, r.s1, r.s2, r.s3] = state.slice(0, 4).map((x) => (x as number) >>> 0) as [number, number, number, number];
    const spare = state[4];
    r.spare = typeof spare === 'number' && Number.isFinite(spare) ? spare : undefined;
    return r;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  fillNormal(out: Float32Array, offset = 0, length = out.length - offset): Float32Array {
    for (let i = offset; i < offset + length; i++) out[i] = this.normal();
    return out;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** FNV-1a over the UTF-16 code units of `key`, mixed with `seed`: a 32-bit per-item seed. */
export function seedFor(seed: number, key: string): number {
  let h = (0x811c9dc5 ^ Math.imul(seed >>> 0, 0x01000193)) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * seedFor with MurmurHash3's finaliser, so every bit depends on every character: for cuts and
 * samples taken by `hash % n` (FNV-1a's low bits depend only on the low bits of the input).
 */
export function keyHash(seed: number, key: string): number {
  let h = seedFor(seed, key);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
