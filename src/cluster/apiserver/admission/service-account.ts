// The ServiceAccount admission plugin on pod creation (plugin/pkg/admission/serviceaccount): the pod runs as
// `default` unless it names a service account, which must exist; unless automounting is off (pod or service
// account), a projected `kube-api-access-xxxxx` volume (a bound token, the cluster CA from `kube-root-ca.crt`, the
// namespace) is added and mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container.
// DefaultTolerationSeconds adds the not-ready / unreachable NoExecute tolerations (300 s).
import { randomBytes } from 'node:crypto';
import { ApiError } from '../errors.js';
import { isObj, obj, type Obj } from '../util.js';

export const SA_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

function suffix(): string {
  let s = '';
  for (const b of randomBytes(5)) s += NAME_CHARS[b % NAME_CHARS.length];
  return s;
}

export function projectedTokenVolume(name: string): Obj {
  return {
    name,
    projected: {
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

/** Mutates a pod being created; `lookupSA` reads the namespace's service account. Throws kube's 403. */
export function admitPodServiceAccount(pod: Obj, namespace: string, lookupSA: (ns: string, name: string) => Obj | undefined): void {
  const meta = obj(pod.metadata);
  if (isObj(meta.annotations) && meta.annotations[MIRROR_ANNOTATION] !== undefined) return;
  if (!isObj(pod.spec)) pod.spec = {};
  const spec = pod.spec as Obj;
  const saName = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : typeof spec.serviceAccount === 'string' && spec.serviceAccount !== '' ? spec.serviceAccount : 'default';
  spec.serviceAccountName = saName;
  spec.serviceAccount = saName;
  const sa = lookupSA(namespace, saName);
  if (!sa) {
    const podName = String(meta.name ?? meta.generateName ?? '');
    throw new ApiError(403, 'Forbidden', `pods "${podName}" is forbidden: error looking up service account ${namespace}/${saName}: serviceaccount "${saName}" not found`, { name: podName, kind: 'pods' });
  }
  const automount = typeof spec.automountServiceAccountToken === 'boolean' ? spec.automountServiceAccountToken : typeof sa.automountServiceAccountToken === 'boolean' ? sa.automountServiceAccountToken : true;
  if (automount) {
    const containers = [...(Array.isArray(spec.initContainers) ? spec.initContainers : []), ...(Array.isArray(spec.containers) ? spec.containers : [])].filter(isObj);
    const mounts = (c: Obj): Obj[] => (Array.isArray(c.volumeMounts) ? c.volumeMounts.filter(isObj) : []);
    const needing = containers.filter((c) => !mounts(c).some((m) => m.mountPath === SA_MOUNT_PATH));
    if (needing.length) {
      const volumes = Array.isArray(spec.volumes) ? spec.volumes : [];
      let name = `kube-api-access-${suffix()}`;
      while (volumes.some((v) => isObj(v) && v.name === name)) name = `kube-api-access-${suffix()}`;
      spec.volumes = [...volumes, projectedTokenVolume(name)];
      for (const c of needing) c.volumeMounts = [...mounts(c), { name, readOnly: true, mountPath: SA_MOUNT_PATH }];
    }
  }
  const tolerations = Array.isArray(spec.tolerations) ? [...spec.tolerations] : [];
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    const has = tolerations.some((t) => isObj(t) && (t.key === key || (t.key === undefined && t.operator === 'Exists')) && (t.effect === undefined || t.effect === '' || t.effect === 'NoExecute'));
    if (!has) tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
  }
  spec.tolerations = tolerations;
  spec.priority ??= 0;
}
