// Defaulting of built-in workload types as kube-apiserver's decoding applies it (k8s.io/kubernetes/pkg/apis/*/v1
// SetDefaults_*): pod specs (and the pod templates of Deployments, ReplicaSets, DaemonSets, StatefulSets) and the
// workloads' own fields. Applied on every write, so a client that omits a default never changes the object.
import { isObj, obj, type Obj } from './util.js';

const defaultPullPolicy = (image: unknown): string => {
  if (typeof image !== 'string') return 'IfNotPresent';
  // the tag is after the last '/' (a registry port is not a tag); a digest pins the image
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  const tag = colon < 0 ? '' : last.slice(colon + 1);
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
};

function defaultContainer(c: unknown): void {
  if (!isObj(c)) return;
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  c.imagePullPolicy ??= defaultPullPolicy(c.image);
  c.resources ??= {};
  if (Array.isArray(c.ports)) for (const p of c.ports) if (isObj(p)) p.protocol ??= 'TCP';
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const pr = c[probe];
    if (!isObj(pr)) continue;
    pr.timeoutSeconds ??= 1;
    pr.periodSeconds ??= 10;
    pr.successThreshold ??= 1;
    pr.failureThreshold ??= 3;
    if (isObj(pr.httpGet)) pr.httpGet.scheme ??= 'HTTP';
  }
}

/** SetDefaults_PodSpec and its containers. */
export function defaultPodSpec(spec: Obj): void {
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  spec.enableServiceLinks ??= true;
  for (const list of ['initContainers', 'containers', 'ephemeralContainers']) if (Array.isArray(spec[list])) for (const c of spec[list] as unknown[]) defaultContainer(c);
  if (Array.isArray(spec.volumes))
    for (const v of spec.volumes) {
      if (!isObj(v)) continue;
      for (const src of ['secret', 'configMap', 'projected', 'downwardAPI']) if (isObj(v[src])) (v[src] as Obj).defaultMode ??= 420;
      if (!['secret', 'configMap', 'projected', 'downwardAPI', 'hostPath', 'persistentVolumeClaim', 'nfs', 'csi', 'ephemeral', 'emptyDir'].some((k) => v[k] !== undefined) && Object.keys(v).length === 1) v.emptyDir = {};
    }
}

/**
 * SetDefaults_Pod: a container with a limit but no request of a resource requests its limit. Pods only, not pod
 * templates, so `kubectl set resources --limits=cpu=200m` gives the pods a CPU request the HPA can use.
 */
function defaultRequestsFromLimits(spec: Obj): void {
  for (const list of ['initContainers', 'containers']) {
    if (!Array.isArray(spec[list])) continue;
    for (const c of spec[list] as unknown[]) {
      if (!isObj(c) || !isObj(c.resources) || !isObj(c.resources.limits)) continue;
      const r = c.resources;
      const requests: Obj = isObj(r.requests) ? { ...r.requests } : {};
      for (const [k, v] of Object.entries(r.limits as Obj)) if (requests[k] === undefined) requests[k] = v;
      r.requests = requests;
    }
  }
}

function defaultTemplate(spec: Obj): void {
  const t = obj(spec.template);
  if (!isObj(spec.template)) return;
  if (!isObj(t.spec)) t.spec = {};
  defaultPodSpec(t.spec as Obj);
}

/** admissionregistration.k8s.io/v1 webhook defaults (SetDefaults_ValidatingWebhook / _MutatingWebhook). */
function defaultWebhooks(o: Obj, mutating: boolean): void {
  if (!Array.isArray(o.webhooks)) return;
  for (const wh of o.webhooks) {
    if (!isObj(wh)) continue;
    wh.failurePolicy ??= 'Fail';
    wh.matchPolicy ??= 'Equivalent';
    wh.namespaceSelector ??= {};
    wh.objectSelector ??= {};
    wh.timeoutSeconds ??= 10;
    if (mutating) wh.reinvocationPolicy ??= 'Never';
    if (Array.isArray(wh.rules)) for (const r of wh.rules) if (isObj(r)) r.scope ??= '*';
    const svc = obj(obj(wh.clientConfig).service);
    if (isObj(obj(wh.clientConfig).service)) svc.port ??= 443;
  }
}

/** Defaults of a built-in object (by storage key `group/resource`); mutates it. */
export function applyBuiltinDefaults(key: string, o: Obj): void {
  if (key === 'admissionregistration.k8s.io/validatingwebhookconfigurations') return defaultWebhooks(o, false);
  if (key === 'admissionregistration.k8s.io/mutatingwebhookconfigurations') return defaultWebhooks(o, true);
  const spec = isObj(o.spec) ? o.spec : undefined;
  switch (key) {
    case '/pods':
      if (spec) {
        defaultPodSpec(spec);
        defaultRequestsFromLimits(spec);
      }
      break;
    case 'apps/deployments':
      if (!spec) return;
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      if (!isObj(spec.strategy)) spec.strategy = {};
      {
        const st = spec.strategy as Obj;
        st.type ??= 'RollingUpdate';
        if (st.type === 'RollingUpdate') {
          if (!isObj(st.rollingUpdate)) st.rollingUpdate = {};
          const ru = st.rollingUpdate as Obj;
          ru.maxUnavailable ??= '25%';
          ru.maxSurge ??= '25%';
        }
      }
      defaultTemplate(spec);
      break;
    case 'apps/replicasets':
      if (!spec) return;
      spec.replicas ??= 1;
      defaultTemplate(spec);
      break;
    case 'apps/daemonsets':
      if (!spec) return;
      spec.revisionHistoryLimit ??= 10;
      if (!isObj(spec.updateStrategy)) spec.updateStrategy = {};
      {
        const us = spec.updateStrategy as Obj;
        us.type ??= 'RollingUpdate';
        if (us.type === 'RollingUpdate') {
          if (!isObj(us.rollingUpdate)) us.rollingUpdate = {};
          const ru = us.rollingUpdate as Obj;
          ru.maxUnavailable ??= 1;
          ru.maxSurge ??= 0;
        }
      }
      defaultTemplate(spec);
      break;
    case 'apps/statefulsets':
      if (!spec) return;
      spec.replicas ??= 1;
      spec.podManagementPolicy ??= 'OrderedReady';
      spec.revisionHistoryLimit ??= 10;
      if (!isObj(spec.updateStrategy)) spec.updateStrategy = {};
      {
        const us = spec.updateStrategy as Obj;
        us.type ??= 'RollingUpdate';
        if (us.type === 'RollingUpdate') {
          if (!isObj(us.rollingUpdate)) us.rollingUpdate = {};
          (us.rollingUpdate as Obj).partition ??= 0;
        }
      }
      spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
      defaultTemplate(spec);
      break;
  }
}
