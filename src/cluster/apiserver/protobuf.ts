// Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) for the types client-go's
// typed clients send that way: `kubectl create <type>` (namespace, secret, configmap, serviceaccount, service,
// deployment), `kubectl create token`, `kubectl auth can-i|whoami`, `kubectl autoscale`, DeleteOptions (helm
// uninstall), Binding, Eviction.
// Responses are always JSON (clients accept it). Field numbers from k8s.io/api generated.proto.
import { ApiError, badRequest, unsupportedMediaType } from './errors.js';
import type { Obj } from './util.js';

type Scalar = 'string' | 'int32' | 'int64' | 'bool' | 'bytes' | 'time' | 'intorstring' | 'quantity' | 'map' | 'mapbytes' | 'mapquantity';
type FieldKind = Scalar | Msg;
interface Msg {
  [num: number]: [name: string, kind: FieldKind, repeated?: boolean];
}

const Time: Scalar = 'time';
const OwnerReference: Msg = { 1: ['kind', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'], 5: ['apiVersion', 'string'], 6: ['controller', 'bool'], 7: ['blockOwnerDeletion', 'bool'] };
const ObjectMeta: Msg = {
  1: ['name', 'string'],
  2: ['generateName', 'string'],
  3: ['namespace', 'string'],
  5: ['uid', 'string'],
  6: ['resourceVersion', 'string'],
  7: ['generation', 'int64'],
  8: ['creationTimestamp', Time],
  11: ['labels', 'map'],
  12: ['annotations', 'map'],
  13: ['ownerReferences', OwnerReference, true],
  14: ['finalizers', 'string', true],
};
const ObjectReference: Msg = { 1: ['kind', 'string'], 2: ['namespace', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'], 5: ['apiVersion', 'string'], 6: ['resourceVersion', 'string'], 7: ['fieldPath', 'string'] };
const LocalObjectReference: Msg = { 1: ['name', 'string'] };
const ServicePort: Msg = { 1: ['name', 'string'], 2: ['protocol', 'string'], 3: ['port', 'int32'], 4: ['targetPort', 'intorstring'], 5: ['nodePort', 'int32'], 6: ['appProtocol', 'string'] };
const ServiceSpec: Msg = {
  1: ['ports', ServicePort, true],
  2: ['selector', 'map'],
  3: ['clusterIP', 'string'],
  4: ['type', 'string'],
  5: ['externalIPs', 'string', true],
  7: ['sessionAffinity', 'string'],
  8: ['loadBalancerIP', 'string'],
  9: ['loadBalancerSourceRanges', 'string', true],
  10: ['externalName', 'string'],
  11: ['externalTrafficPolicy', 'string'],
  12: ['healthCheckNodePort', 'int32'],
  13: ['publishNotReadyAddresses', 'bool'],
  14: ['sessionAffinityConfig', { 1: ['clientIP', { 1: ['timeoutSeconds', 'int32'] }] }],
  17: ['ipFamilyPolicy', 'string'],
  18: ['clusterIPs', 'string', true],
  19: ['ipFamilies', 'string', true],
  20: ['allocateLoadBalancerNodePorts', 'bool'],
  21: ['loadBalancerClass', 'string'],
  22: ['internalTrafficPolicy', 'string'],
  23: ['trafficDistribution', 'string'],
};
const LabelSelector: Msg = { 1: ['matchLabels', 'map'], 2: ['matchExpressions', { 1: ['key', 'string'], 2: ['operator', 'string'], 3: ['values', 'string', true] }, true] };
const Container: Msg = {
  1: ['name', 'string'],
  2: ['image', 'string'],
  3: ['command', 'string', true],
  4: ['args', 'string', true],
  5: ['workingDir', 'string'],
  6: ['ports', { 1: ['name', 'string'], 2: ['hostPort', 'int32'], 3: ['containerPort', 'int32'], 4: ['protocol', 'string'], 5: ['hostIP', 'string'] }, true],
  7: ['env', { 1: ['name', 'string'], 2: ['value', 'string'] }, true],
  8: ['resources', { 1: ['limits', 'mapquantity'], 2: ['requests', 'mapquantity'] }],
  13: ['terminationMessagePath', 'string'],
  14: ['imagePullPolicy', 'string'],
  16: ['stdin', 'bool'],
  17: ['stdinOnce', 'bool'],
  18: ['tty', 'bool'],
  20: ['terminationMessagePolicy', 'string'],
};
const PodSpec: Msg = { 2: ['containers', Container, true], 3: ['restartPolicy', 'string'], 8: ['serviceAccountName', 'string'], 10: ['nodeName', 'string'], 20: ['initContainers', Container, true] };
const PodTemplateSpec: Msg = { 1: ['metadata', ObjectMeta], 2: ['spec', PodSpec] };
const DeploymentSpec: Msg = {
  1: ['replicas', 'int32'],
  2: ['selector', LabelSelector],
  3: ['template', PodTemplateSpec],
  4: ['strategy', { 1: ['type', 'string'], 2: ['rollingUpdate', { 1: ['maxUnavailable', 'intorstring'], 2: ['maxSurge', 'intorstring'] }] }],
  5: ['minReadySeconds', 'int32'],
  6: ['revisionHistoryLimit', 'int32'],
  7: ['paused', 'bool'],
  9: ['progressDeadlineSeconds', 'int32'],
};

// authentication.k8s.io/v1 and authorization.k8s.io/v1 (what kubectl create token / auth can-i / auth whoami send)
const BoundObjectReference: Msg = { 1: ['kind', 'string'], 2: ['apiVersion', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'] };
const ResourceAttributes: Msg = { 1: ['namespace', 'string'], 2: ['verb', 'string'], 3: ['group', 'string'], 4: ['version', 'string'], 5: ['resource', 'string'], 6: ['subresource', 'string'], 7: ['name', 'string'] };
const NonResourceAttributes: Msg = { 1: ['path', 'string'], 2: ['verb', 'string'] };
const SubjectAccessReviewSpec: Msg = {
  1: ['resourceAttributes', ResourceAttributes],
  2: ['nonResourceAttributes', NonResourceAttributes],
  3: ['user', 'string'],
  4: ['groups', 'string', true],
  6: ['uid', 'string'],
};
const Preconditions: Msg = { 1: ['uid', 'string'], 2: ['resourceVersion', 'string'] };
/** meta/v1 DeleteOptions (client-go's typed clients send it as protobuf on DELETE: helm uninstall) */
const DeleteOptions: Msg = {
  1: ['gracePeriodSeconds', 'int64'],
  2: ['preconditions', Preconditions],
  3: ['orphanDependents', 'bool'],
  4: ['propagationPolicy', 'string'],
  5: ['dryRun', 'string', true],
};

// rbac.authorization.k8s.io/v1 (kubectl create role|clusterrole|rolebinding|clusterrolebinding)
const PolicyRule: Msg = { 1: ['verbs', 'string', true], 2: ['apiGroups', 'string', true], 3: ['resources', 'string', true], 4: ['resourceNames', 'string', true], 5: ['nonResourceURLs', 'string', true] };
const RbacSubject: Msg = { 1: ['kind', 'string'], 2: ['apiGroup', 'string'], 3: ['name', 'string'], 4: ['namespace', 'string'] };
const RoleRef: Msg = { 1: ['apiGroup', 'string'], 2: ['kind', 'string'], 3: ['name', 'string'] };
const Binding: Msg = { 1: ['metadata', ObjectMeta], 2: ['subjects', RbacSubject, true], 3: ['roleRef', RoleRef] };

// autoscaling/v1 and v2 HorizontalPodAutoscaler (kubectl autoscale)
const CrossVersionObjectReference: Msg = { 1: ['kind', 'string'], 2: ['name', 'string'], 3: ['apiVersion', 'string'] };
const MetricTarget: Msg = { 1: ['type', 'string'], 2: ['value', 'quantity'], 3: ['averageValue', 'quantity'], 4: ['averageUtilization', 'int32'] };
const MetricIdentifier: Msg = { 1: ['name', 'string'], 2: ['selector', LabelSelector] };
const MetricSpecV2: Msg = {
  1: ['type', 'string'],
  2: ['object', { 1: ['describedObject', CrossVersionObjectReference], 2: ['target', MetricTarget], 3: ['metric', MetricIdentifier] }],
  3: ['pods', { 1: ['metric', MetricIdentifier], 2: ['target', MetricTarget] }],
  4: ['resource', { 1: ['name', 'string'], 2: ['target', MetricTarget] }],
  5: ['external', { 1: ['metric', MetricIdentifier], 2: ['target', MetricTarget] }],
  7: ['containerResource', { 1: ['name', 'string'], 2: ['target', MetricTarget], 3: ['container', 'string'] }],
};
const HPAScalingRules: Msg = { 1: ['selectPolicy', 'string'], 2: ['policies', { 1: ['type', 'string'], 2: ['value', 'int32'], 3: ['periodSeconds', 'int32'] }, true], 3: ['stabilizationWindowSeconds', 'int32'] };

const TYPES: Record<string, Msg> = {
  'autoscaling/v1/HorizontalPodAutoscaler': {
    1: ['metadata', ObjectMeta],
    2: ['spec', { 1: ['scaleTargetRef', CrossVersionObjectReference], 2: ['minReplicas', 'int32'], 3: ['maxReplicas', 'int32'], 4: ['targetCPUUtilizationPercentage', 'int32'] }],
  },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    1: ['metadata', ObjectMeta],
    2: [
      'spec',
      {
        1: ['scaleTargetRef', CrossVersionObjectReference],
        2: ['minReplicas', 'int32'],
        3: ['maxReplicas', 'int32'],
        4: ['metrics', MetricSpecV2, true],
        5: ['behavior', { 1: ['scaleUp', HPAScalingRules], 2: ['scaleDown', HPAScalingRules] }],
      },
    ],
  },
  'rbac.authorization.k8s.io/v1/Role': { 1: ['metadata', ObjectMeta], 2: ['rules', PolicyRule, true] },
  'rbac.authorization.k8s.io/v1/ClusterRole': { 1: ['metadata', ObjectMeta], 2: ['rules', PolicyRule, true], 3: ['aggregationRule', { 1: ['clusterRoleSelectors', LabelSelector, true] }] },
  'rbac.authorization.k8s.io/v1/RoleBinding': Binding,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': Binding,
  'authentication.k8s.io/v1/TokenRequest': {
    1: ['metadata', ObjectMeta],
    2: ['spec', { 1: ['audiences', 'string', true], 3: ['boundObjectRef', BoundObjectReference], 4: ['expirationSeconds', 'int64'] }],
  },
  'authentication.k8s.io/v1/TokenReview': { 1: ['metadata', ObjectMeta], 2: ['spec', { 1: ['token', 'string'], 2: ['audiences', 'string', true] }] },
  'authentication.k8s.io/v1/SelfSubjectReview': { 1: ['metadata', ObjectMeta] },
  'authorization.k8s.io/v1/SelfSubjectAccessReview': { 1: ['metadata', ObjectMeta], 2: ['spec', { 1: ['resourceAttributes', ResourceAttributes], 2: ['nonResourceAttributes', NonResourceAttributes] }] },
  'authorization.k8s.io/v1/SelfSubjectRulesReview': { 1: ['metadata', ObjectMeta], 2: ['spec', { 1: ['namespace', 'string'] }] },
  'authorization.k8s.io/v1/SubjectAccessReview': { 1: ['metadata', ObjectMeta], 2: ['spec', SubjectAccessReviewSpec] },
  'authorization.k8s.io/v1/LocalSubjectAccessReview': { 1: ['metadata', ObjectMeta], 2: ['spec', SubjectAccessReviewSpec] },
  'v1/Binding': { 1: ['metadata', ObjectMeta], 2: ['target', ObjectReference] },
  'policy/v1/Eviction': { 1: ['metadata', ObjectMeta], 2: ['deleteOptions', DeleteOptions] },
  'v1/Namespace': { 1: ['metadata', ObjectMeta], 2: ['spec', { 1: ['finalizers', 'string', true] }], 3: ['status', { 1: ['phase', 'string'] }] },
  'v1/ConfigMap': { 1: ['metadata', ObjectMeta], 2: ['data', 'map'], 3: ['binaryData', 'mapbytes'], 4: ['immutable', 'bool'] },
  'v1/Secret': { 1: ['metadata', ObjectMeta], 2: ['data', 'mapbytes'], 3: ['type', 'string'], 4: ['stringData', 'map'], 5: ['immutable', 'bool'] },
  'v1/ServiceAccount': { 1: ['metadata', ObjectMeta], 2: ['secrets', ObjectReference, true], 3: ['imagePullSecrets', LocalObjectReference, true], 4: ['automountServiceAccountToken', 'bool'] },
  'v1/Service': { 1: ['metadata', ObjectMeta], 2: ['spec', ServiceSpec] },
  'apps/v1/Deployment': { 1: ['metadata', ObjectMeta], 2: ['spec', DeploymentSpec] },
};

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new Error('varint too long');
    }
  }
  bytes(): Uint8Array {
    const n = Number(this.varint());
    if (this.pos + n > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** The first length-delimited field `n` of this message. */
  bytesField(n: number): Uint8Array | undefined {
    while (!this.done()) {
      const tag = Number(this.varint());
      if (tag >> 3 === n && (tag & 7) === 2) return this.bytes();
      this.skip(tag & 7);
    }
    return undefined;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

const td = new TextDecoder();
const signed64 = (v: bigint): number => Number(BigInt.asIntN(64, v));

function decodeMapEntry(data: Uint8Array, valueKind: 'string' | 'bytes' | 'quantity'): [string, string] {
  const r = new Reader(data);
  let k = '';
  let v = '';
  while (!r.done()) {
    const tag = Number(r.varint());
    const num = tag >> 3;
    if (num === 1 && (tag & 7) === 2) k = td.decode(r.bytes());
    else if (num === 2 && (tag & 7) === 2) {
      const b = r.bytes();
      if (valueKind === 'bytes') v = Buffer.from(b).toString('base64');
      else if (valueKind === 'quantity') v = td.decode(new Reader(b).bytesField(1) ?? new Uint8Array());
      else v = td.decode(b);
    } else r.skip(tag & 7);
  }
  return [k, v];
}

const ZERO_TIME = '1970-01-01T00:00:00Z';
/** Pointer fields whose zero value means something. */
const KEEP_ZERO = new Set([
  'allocateLoadBalancerNodePorts',
  'replicas',
  'automountServiceAccountToken',
  'intVal',
  'gracePeriodSeconds',
  'orphanDependents',
  'minReplicas',
  'targetCPUUtilizationPercentage',
  'stabilizationWindowSeconds',
]);

function decodeMessage(data: Uint8Array, spec: Msg): Obj {
  const r = new Reader(data);
  const out: Obj = {};
  while (!r.done()) {
    const tag = Number(r.varint());
    const num = tag >> 3;
    const wire = tag & 7;
    const f = spec[num];
    if (!f) {
      r.skip(wire);
      continue;
    }
    const [name, kind, repeated] = f;
    let value: unknown;
    if (typeof kind === 'object') value = decodeMessage(r.bytes(), kind);
    else
      switch (kind) {
        case 'string':
          value = td.decode(r.bytes());
          break;
        case 'bytes':
          value = Buffer.from(r.bytes()).toString('base64');
          break;
        case 'int32':
        case 'int64':
          value = signed64(r.varint());
          break;
        case 'bool':
          value = r.varint() !== 0n;
          break;
        case 'time': {
          const t = decodeMessage(r.bytes(), { 1: ['seconds', 'int64'], 2: ['nanos', 'int32'] });
          value = new Date(Number(t.seconds ?? 0) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
          break;
        }
        case 'intorstring': {
          const v = decodeMessage(r.bytes(), { 1: ['type', 'int64'], 2: ['intVal', 'int32'], 3: ['strVal', 'string'] });
          value = v.type === 1 ? (v.strVal ?? '') : (v.intVal ?? 0);
          break;
        }
        case 'quantity':
          value = td.decode(new Reader(r.bytes()).bytesField(1) ?? new Uint8Array());
          break;
        case 'map':
        case 'mapbytes':
        case 'mapquantity': {
          const [k, v] = decodeMapEntry(r.bytes(), kind === 'map' ? 'string' : kind === 'mapbytes' ? 'bytes' : 'quantity');
          const m = (out[name] as Record<string, string> | undefined) ?? {};
          m[k] = v;
          out[name] = m;
          continue;
        }
      }
    // gogo-protobuf writes zero values of non-pointer fields; JSON (omitempty) does not have them
    if (!repeated && (value === '' || value === 0 || value === false || value === ZERO_TIME) && !KEEP_ZERO.has(name)) continue;
    if (repeated) {
      const a = (out[name] as unknown[] | undefined) ?? [];
      a.push(value);
      out[name] = a;
    } else out[name] = value;
  }
  return out;
}

export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** Decode a `k8s\0`-enveloped runtime.Unknown into a JSON object of a supported kind. */
export function decodeProtobuf(raw: Buffer): Obj {
  if (raw.length < 4 || raw.subarray(0, 4).toString('latin1') !== 'k8s\0') throw unsupportedMediaType(PROTOBUF, ['application/json', 'application/yaml']);
  let unk: Obj;
  try {
    unk = decodeMessage(raw.subarray(4), { 1: ['typeMeta', { 1: ['apiVersion', 'string'], 2: ['kind', 'string'] }], 2: ['raw', 'bytes'] });
  } catch {
    throw unsupportedMediaType(PROTOBUF, ['application/json', 'application/yaml']);
  }
  const tm = (unk.typeMeta ?? {}) as Obj;
  const apiVersion = String(tm.apiVersion ?? '');
  const kind = String(tm.kind ?? '');
  // DeleteOptions are registered in every group version; client-go labels them with the client's
  const spec = kind === 'DeleteOptions' ? DeleteOptions : TYPES[`${apiVersion}/${kind}`];
  if (!spec)
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      `the dev-apiserver cannot decode a protobuf ${apiVersion} ${kind} (it decodes the kinds client-go sends that way: ${Object.keys(TYPES).map((t) => t.split('/').pop()).join(', ')}, DeleteOptions); send JSON or YAML (e.g. kubectl create -f / apply -f)`,
    );
  let body: Obj;
  try {
    body = decodeMessage(Buffer.from(String(unk.raw ?? ''), 'base64'), spec);
  } catch (e) {
    throw badRequest(`${kind} in version "${apiVersion}" cannot be handled as a ${kind}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { apiVersion, kind, ...body };
}
