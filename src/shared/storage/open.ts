/**
 * Opens locations with the process's S3 settings; one client per bucket per process.
 */
import type { EnvConfig } from '../config/env.js';
import { locate, type Location } from './locate.js';
import { joinKey, type GetOptions } from './object-store.js';
import { S3Store } from './s3-store.js';

const s3Stores = new Map<string, S3Store>();

export function openLocation(uri: string, env: EnvConfig, mustExist = false): Location {
  return locate(uri, {
    mustExist,
    openS3: (bucket) => {
      let s = s3Stores.get(bucket);
      if (s === undefined) {
        s = new S3Store(bucket, env.s3);
        s3Stores.set(bucket, s);
      }
      return s;
    },
  });
}

export function closeStores(): void {
  for (const s of s3Stores.values()) s.destroy();
  s3Stores.clear();
}

/** An encoder context that reads plugged-in model folders from any location the process can open. */
export function encoderFolders(env: EnvConfig): { openModelFolder: (uri: string) => (rel: string, options?: GetOptions) => Promise<Uint8Array> } {
  return {
    openModelFolder: (uri) => {
      const loc = openLocation(uri, env, true);
      return (rel, options) => loc.store.get(joinKey(loc.prefix, rel), options);
    },
  };
}
