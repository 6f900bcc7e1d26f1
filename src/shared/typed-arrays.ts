/** Typed arrays joined end to end: one allocation, one copy of each part. */

function concatInto<T extends Uint8Array | Float32Array>(out: T, parts: readonly ArrayLike<number>[]): T {
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function concatFloat32(parts: readonly Float32Array[]): Float32Array<ArrayBuffer> {
  return concatInto(new Float32Array(parts.reduce((s, p) => s + p.length, 0)), parts);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  return concatInto(new Uint8Array(parts.reduce((s, p) => s + p.length, 0)), parts);
}
