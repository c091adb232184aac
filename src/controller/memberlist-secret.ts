// The speakers' memberlist encryption key: Secret `<name>` with key `secretkey` = unpadded standard base64 of 16
// random bytes (22 characters), created when missing and never overwritten (reference d.3).
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Secret } from '../k8s/types.js';
import { errorText, isAlreadyExists, isConflict, isNotFound, type KubeClient } from '../k8s/client.js';
import { collectionPath, objectPath, R } from '../k8s/resources.js';
import { isForbidden } from '../k8s/access.js';

/** The `secretkey` value: 16 random bytes, base64 without padding. */
export const newMemberlistKey = (): string => randomBytes(16).toString('base64').replace(/=+$/, '');

export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

/** Returns 'created' | 'exists'; throws on API errors other than a lost creation race. */
export async function ensureMemberlistSecret(
  client: KubeClient,
  namespace: string,
  name: string,
  log: Logger,
  owner?: OwnerRef,
): Promise<'created' | 'exists'> {
  try {
    await client.get<Secret>(objectPath(R.secrets, namespace, name));
    log.debug({ secret: `${namespace}/${name}` }, 'memberlist secret exists');
    return 'exists';
  } catch (err) {
    if (!isNotFound(err) && !isForbidden(err)) throw err;
    // MetalLB v0.10-v0.12's roles grant `list` of this one Secret (a list selecting it by name) and no `get`.
    if (isForbidden(err)) {
      try {
        const l = await client.get<{ items?: Secret[] }>(collectionPath(R.secrets, namespace), { query: { fieldSelector: `metadata.name=${name}` } });
        if ((l.items ?? []).length > 0) return 'exists';
      } catch (err2) {
        if (!isForbidden(err2)) throw err2;
      }
    }
  }
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace,
      ...(owner ? { ownerReferences: [{ ...owner, controller: true, blockOwnerDeletion: false }] } : {}),
    },
    data: { secretkey: Buffer.from(newMemberlistKey(), 'utf8').toString('base64') },
  };
  try {
    await client.post(collectionPath(R.secrets, namespace), secret);
    log.info({ secret: `${namespace}/${name}` }, 'memberlist secret created');
    return 'created';
  } catch (err) {
    if (isAlreadyExists(err) || isConflict(err)) return 'exists';
    if (isForbidden(err)) throw err; // the feature goes off (one warning)
    throw new Error(`creating memberlist secret ${namespace}/${name}: ${errorText(err)}`);
  }
}
