/** What a scan needs to know of its model before enqueuing: the encoder spec and an identity hash. */
import { MODEL_FILES, readModelJson } from '../shared/dlsr/artifact.js';
import type { EncoderSpec } from '../shared/encoder/registry.js';
import { joinKey } from '../shared/storage/object-store.js';
import type { Location } from '../shared/storage/locate.js';
import { stableHash } from '../shared/queue/contract.js';

export async function modelIdentity(model: Location): Promise<{ encoder: EncoderSpec; identity: string }> {
  const json = await readModelJson(model.store, model.prefix);
  const head = await model.store.head(joinKey(model.prefix, MODEL_FILES.model));
  return { encoder: json.config.encoder, identity: stableHash(json.fingerprint.id, head?.etag ?? '') };
}
