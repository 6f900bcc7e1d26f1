/** Which objects ood-audit treats as images: by file extension (no decoding, no sharp). */

/** Image file extensions ood-audit treats as images when listing a folder or prefix. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif', '.bmp',
]);

export function isImageKey(key: string): boolean {
  const dot = key.lastIndexOf('.');
  return dot >= 0 && IMAGE_EXTENSIONS.has(key.slice(dot).toLowerCase());
}
