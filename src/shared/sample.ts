/** A deterministic, evenly spread subset of at most `limit` items, in their order (all of them when there are no more). */
export function evenly<T>(items: readonly T[], limit: number | undefined): T[] {
  if (limit === undefined || items.length <= limit) return [...items];
  return Array.from({ length: limit }, (_, i) => items[Math.floor((i * items.length) / limit)]!);
}
