// Server-side printing: meta.k8s.io/v1 Table rows for `kubectl get`, like kube-apiserver's printers.
import { podRow, podRowConditions } from './pod-printer.js';
import type { PrinterColumn, ResourceType } from './registry.js';
import { apiServiceTableCells } from './aggregator/apiservice.js';
import { hpaTableCells } from './autoscaling/hpa-strategy.js';
import { formatLabelSelector } from './selectors.js';
import { arr, getPath, isObj, obj, str, type Obj } from './util.js';

export interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

type Cell = string | number | boolean | null;

interface Printer {
  columns: Column[];
  cells(o: Obj, now: number): Cell[];
  /** Row conditions (meta.k8s.io/v1 TableRowCondition), e.g. a completed pod's. */
  conditions?(o: Obj): Obj[] | undefined;
}

const col = (name: string, type = 'string', priority = 0, format = '', description = ''): Column => ({ name, type, format, description, priority });
const NAME = col('Name', 'string', 0, 'name', 'Name must be unique within a namespace.');
const AGE = col('Age', 'string', 0, '', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(seconds / 3600);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

export function age(ts: unknown, now: number): string {
  if (typeof ts !== 'string' || ts === '') return '<unknown>';
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return '<unknown>';
  return humanDuration(now - t);
}

const name = (o: Obj): string => str(obj(o.metadata).name) ?? '';
const created = (o: Obj, now: number): string => age(obj(o.metadata).creationTimestamp, now);

function servicePorts(spec: Obj): string {
  const ports = arr(spec.ports).filter(isObj);
  if (ports.length === 0) return '<none>';
  return ports
    .map((p) => {
      const proto = str(p.protocol) ?? 'TCP';
      return typeof p.nodePort === 'number' && p.nodePort > 0 ? `${String(p.port)}:${p.nodePort}/${proto}` : `${String(p.port)}/${proto}`;
    })
    .join(',');
}

function lbIngress(o: Obj, wide: boolean): string {
  const ing = arr(getPath(o, 'status.loadBalancer.ingress')).filter(isObj);
  const s = ing.map((i) => str(i.ip) ?? str(i.hostname) ?? '').filter((x) => x !== '').join(',');
  if (!wide && s.length > 16) return `${s.slice(0, 13)}...`;
  return s;
}

export function serviceExternalIP(o: Obj, wide = false): string {
  const spec = obj(o.spec);
  const ext = arr(spec.externalIPs).map(String);
  switch (spec.type ?? 'ClusterIP') {
    case 'ClusterIP':
    case 'NodePort':
      return ext.length ? ext.join(',') : '<none>';
    case 'LoadBalancer': {
      const lb = lbIngress(o, wide);
      if (ext.length) return [...(lb ? lb.split(',') : []), ...ext].join(',');
      return lb || '<pending>';
    }
    case 'ExternalName':
      return str(spec.externalName) ?? '';
  }
  return '<unknown>';
}

const selectorString = (sel: unknown): string => {
  if (!isObj(sel) || Object.keys(sel).length === 0) return '<none>';
  return Object.entries(sel)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
};

const count = (v: unknown): number => (isObj(v) ? Object.keys(v).length : 0);

/** `-o wide` of the workloads: their pod template's containers and images. */
const TEMPLATE_WIDE = [
  col('Containers', 'string', 1, '', 'Names of each container in the template.'),
  col('Images', 'string', 1, '', 'Images referenced by each container in the template.'),
];
const SELECTOR_WIDE = col('Selector', 'string', 1, '', 'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.');

function templateCells(o: Obj): [string, string] {
  const cs = arr(getPath(o, 'spec.template.spec.containers')).filter(isObj);
  return [cs.map((c) => str(c.name) ?? '').join(','), cs.map((c) => str(c.image) ?? '').join(',')];
}

const workloadSelector = (o: Obj): string => formatLabelSelector(getPath(o, 'spec.selector')) || '<none>';

/** kube-apiserver's event columns (SUBOBJECT, SOURCE, FIRST SEEN, COUNT, NAME with `-o wide`). */
const EVENT_COLUMNS = [
  col('Last Seen', 'string', 0, '', 'The time at which the most recent occurrence of this event was recorded.'),
  col('Type', 'string', 0, '', 'Type of this event (Normal, Warning), new types could be added in the future'),
  col('Reason', 'string', 0, '', 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.'),
  col('Object', 'string', 0, '', 'The object that this event is about.'),
  col('Subobject', 'string', 1, '', 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].'),
  col('Source', 'string', 1, '', 'The component reporting this event. Should be a short machine understandable string.'),
  col('Message', 'string', 0, '', 'A human-readable description of the status of this operation.'),
  col('First Seen', 'string', 1, '', 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)'),
  col('Count', 'string', 1, '', 'The number of times this event has occurred.'),
  col('Name', 'string', 1, 'name', 'Name must be unique within a namespace.'),
];

const ts = (v: unknown): boolean => typeof v === 'string' && v !== '';
const eventTarget = (kind: unknown, objName: unknown): string => {
  const k = (str(kind) ?? '').toLowerCase();
  return str(objName) ? `${k}/${String(objName)}` : k;
};
const eventSource = (component: string, instance: string): string => (instance ? `${component}, ${instance}` : component);

const PRINTERS: Record<string, Printer> = {
  '/services': {
    columns: [
      NAME,
      col('Type', 'string', 0, '', 'The type of the service.'),
      col('Cluster-IP', 'string', 0, '', 'The IP address of the service.'),
      col('External-IP', 'string', 0, '', 'The external IP address of the service.'),
      col('Port(s)', 'string', 0, '', 'The ports of the service.'),
      AGE,
      col('Selector', 'string', 1, '', 'The label selector of the service.'),
    ],
    cells: (o, now) => {
      const spec = obj(o.spec);
      return [name(o), str(spec.type) ?? 'ClusterIP', str(spec.clusterIP) || '<none>', serviceExternalIP(o), servicePorts(spec), created(o, now), selectorString(spec.selector)];
    },
  },
  '/namespaces': {
    columns: [NAME, col('Status', 'string', 0, '', 'The status of the namespace'), AGE],
    cells: (o, now) => [name(o), str(getPath(o, 'status.phase')) ?? 'Active', created(o, now)],
  },
  '/nodes': {
    columns: [
      NAME,
      col('Status', 'string', 0, '', 'The status of the node'),
      col('Roles', 'string', 0, '', 'The roles of the node'),
      AGE,
      col('Version', 'string', 0, '', 'Kubelet Version reported by the node.'),
      col('Internal-IP', 'string', 1, '', 'List of addresses reachable to the node. Queried from cloud provider, if available.'),
      col('External-IP', 'string', 1, '', 'List of addresses reachable to the node. Queried from cloud provider, if available.'),
      col('OS-Image', 'string', 1, '', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).'),
      col('Kernel-Version', 'string', 1, '', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
      col('Container-Runtime', 'string', 1, '', 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).'),
    ],
    cells: (o, now) => {
      const conds = arr(getPath(o, 'status.conditions')).filter(isObj);
      const ready = conds.find((c) => c.type === 'Ready');
      let status = ready ? (ready.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown';
      if (getPath(o, 'spec.unschedulable') === true) status += ',SchedulingDisabled';
      const labels = obj(obj(o.metadata).labels);
      const roles = Object.keys(labels)
        .filter((k) => k.startsWith('node-role.kubernetes.io/'))
        .map((k) => k.slice('node-role.kubernetes.io/'.length))
        .filter((x) => x);
      // the older role label kubectl still reads
      const legacyRole = str(labels['kubernetes.io/role']);
      if (legacyRole && !roles.includes(legacyRole)) roles.push(legacyRole);
      const addrs = arr(getPath(o, 'status.addresses')).filter(isObj);
      const addr = (t: string): string => str(addrs.find((a) => a.type === t)?.address) ?? '<none>';
      const info = (k: string): string => str(getPath(o, `status.nodeInfo.${k}`)) || '<unknown>';
      return [
        name(o),
        status,
        roles.length ? roles.sort().join(',') : '<none>',
        created(o, now),
        str(getPath(o, 'status.nodeInfo.kubeletVersion')) ?? '',
        addr('InternalIP'),
        addr('ExternalIP'),
        info('osImage'),
        info('kernelVersion'),
        info('containerRuntimeVersion'),
      ];
    },
  },
  '/pods': {
    columns: [
      NAME,
      col('Ready', 'string', 0, '', 'The aggregate readiness state of this pod for accepting traffic.'),
      col('Status', 'string', 0, '', 'The aggregate status of the containers in this pod.'),
      col('Restarts', 'string', 0, '', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
      AGE,
      col('IP', 'string', 1, '', 'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.'),
      col('Node', 'string', 1, '', 'NodeName indicates in which node this pod is scheduled.'),
      col('Nominated Node', 'string', 1, '', 'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.'),
      col('Readiness Gates', 'string', 1, '', 'If specified, all readiness gates will be evaluated for pod readiness.'),
    ],
    cells: (o, now) => {
      const r = podRow(o, now, humanDuration);
      return [name(o), r.ready, r.status, r.restarts, created(o, now), r.ip, r.node, r.nominatedNode, r.readinessGates];
    },
    conditions: podRowConditions,
  },
  '/configmaps': {
    columns: [NAME, col('Data', 'integer'), AGE],
    cells: (o, now) => [name(o), count(o.data) + count(o.binaryData), created(o, now)],
  },
  '/secrets': {
    columns: [NAME, col('Type'), col('Data', 'integer'), AGE],
    cells: (o, now) => [name(o), str(o.type) ?? 'Opaque', count(o.data), created(o, now)],
  },
  '/serviceaccounts': {
    columns: [NAME, col('Secrets', 'integer'), AGE],
    cells: (o, now) => [name(o), arr(o.secrets).length, created(o, now)],
  },
  '/endpoints': {
    columns: [NAME, col('Endpoints'), AGE],
    cells: (o, now) => {
      const eps: string[] = [];
      for (const s of arr(o.subsets).filter(isObj)) {
        const ports = arr(s.ports).filter(isObj);
        for (const a of arr(s.addresses).filter(isObj)) {
          if (ports.length === 0) eps.push(String(a.ip));
          for (const p of ports) eps.push(`${String(a.ip)}:${String(p.port)}`);
        }
      }
      const shown = eps.slice(0, 3).join(',');
      return [name(o), eps.length === 0 ? '<none>' : eps.length > 3 ? `${shown} + ${eps.length - 3} more...` : shown, created(o, now)];
    },
  },
  'discovery.k8s.io/endpointslices': {
    columns: [NAME, col('AddressType'), col('Ports'), col('Endpoints'), AGE],
    cells: (o, now) => {
      const ports = arr(o.ports).filter(isObj).map((p) => String(p.port ?? ''));
      const addrs = arr(o.endpoints).filter(isObj).flatMap((e) => arr(e.addresses).map(String));
      const shown = addrs.slice(0, 3).join(',');
      return [name(o), str(o.addressType) ?? '', ports.length ? ports.join(',') : '<unset>', addrs.length === 0 ? '<unset>' : addrs.length > 3 ? `${shown} + ${addrs.length - 3} more...` : shown, created(o, now)];
    },
  },
  'coordination.k8s.io/leases': {
    columns: [NAME, col('Holder'), AGE],
    cells: (o, now) => [name(o), str(getPath(o, 'spec.holderIdentity')) ?? '', created(o, now)],
  },
  '/events': {
    columns: EVENT_COLUMNS,
    cells: (o, now) => {
      const io = obj(o.involvedObject);
      const first = ts(o.firstTimestamp) ? age(o.firstTimestamp, now) : age(o.eventTime, now);
      let last = ts(o.lastTimestamp) ? age(o.lastTimestamp, now) : first;
      let count = typeof o.count === 'number' && o.count > 0 ? o.count : 1;
      const series = obj(o.series);
      if (isObj(o.series)) {
        last = age(series.lastObservedTime, now);
        count = typeof series.count === 'number' ? series.count : count;
      }
      const src = obj(o.source);
      return [
        last,
        str(o.type) ?? '',
        str(o.reason) ?? '',
        eventTarget(io.kind, io.name),
        str(io.fieldPath) ?? '',
        eventSource(str(src.component) || str(o.reportingComponent) || '', str(src.host) || str(o.reportingInstance) || ''),
        (str(o.message) ?? '').trim(),
        first,
        count,
        name(o),
      ];
    },
  },
  'events.k8s.io/events': {
    columns: EVENT_COLUMNS,
    cells: (o, now) => {
      // the same event seen through events.k8s.io/v1 (deprecated* fields are core/v1's)
      const r = obj(o.regarding);
      const first = ts(o.deprecatedFirstTimestamp) ? age(o.deprecatedFirstTimestamp, now) : age(o.eventTime, now);
      let last = ts(o.deprecatedLastTimestamp) ? age(o.deprecatedLastTimestamp, now) : first;
      let count = typeof o.deprecatedCount === 'number' && o.deprecatedCount > 0 ? o.deprecatedCount : 1;
      const series = obj(o.series);
      if (isObj(o.series)) {
        last = age(series.lastObservedTime, now);
        count = typeof series.count === 'number' ? series.count : count;
      }
      const src = obj(o.deprecatedSource);
      return [
        last,
        str(o.type) ?? '',
        str(o.reason) ?? '',
        eventTarget(r.kind, r.name),
        str(r.fieldPath) ?? '',
        eventSource(str(o.reportingController) || str(src.component) || '', str(o.reportingInstance) || str(src.host) || ''),
        (str(o.note) ?? '').trim(),
        first,
        count,
        name(o),
      ];
    },
  },
  'apps/deployments': {
    columns: [NAME, col('Ready'), col('Up-to-date', 'integer'), col('Available', 'integer'), AGE, ...TEMPLATE_WIDE, SELECTOR_WIDE],
    cells: (o, now) => {
      const st = obj(o.status);
      const want = typeof getPath(o, 'spec.replicas') === 'number' ? (getPath(o, 'spec.replicas') as number) : 1;
      return [name(o), `${Number(st.readyReplicas ?? 0)}/${want}`, Number(st.updatedReplicas ?? 0), Number(st.availableReplicas ?? 0), created(o, now), ...templateCells(o), workloadSelector(o)];
    },
  },
  'apps/replicasets': {
    columns: [NAME, col('Desired', 'integer'), col('Current', 'integer'), col('Ready', 'integer'), AGE, ...TEMPLATE_WIDE, SELECTOR_WIDE],
    cells: (o, now) => {
      const st = obj(o.status);
      const want = typeof getPath(o, 'spec.replicas') === 'number' ? (getPath(o, 'spec.replicas') as number) : 1;
      return [name(o), want, Number(st.replicas ?? 0), Number(st.readyReplicas ?? 0), created(o, now), ...templateCells(o), workloadSelector(o)];
    },
  },
  'apps/statefulsets': {
    columns: [NAME, col('Ready'), AGE, ...TEMPLATE_WIDE],
    cells: (o, now) => {
      const want = typeof getPath(o, 'spec.replicas') === 'number' ? (getPath(o, 'spec.replicas') as number) : 1;
      return [name(o), `${Number(getPath(o, 'status.readyReplicas') ?? 0)}/${want}`, created(o, now), ...templateCells(o)];
    },
  },
  'apps/daemonsets': {
    columns: [NAME, col('Desired', 'integer'), col('Current', 'integer'), col('Ready', 'integer'), col('Up-to-date', 'integer'), col('Available', 'integer'), col('Node Selector'), AGE, ...TEMPLATE_WIDE, SELECTOR_WIDE],
    cells: (o, now) => {
      const st = obj(o.status);
      return [
        name(o),
        Number(st.desiredNumberScheduled ?? 0),
        Number(st.currentNumberScheduled ?? 0),
        Number(st.numberReady ?? 0),
        Number(st.updatedNumberScheduled ?? 0),
        Number(st.numberAvailable ?? 0),
        selectorString(getPath(o, 'spec.template.spec.nodeSelector')),
        created(o, now),
        ...templateCells(o),
        workloadSelector(o),
      ];
    },
  },
  'autoscaling/horizontalpodautoscalers': {
    columns: [
      NAME,
      col('Reference', 'string', 0, '', 'scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.'),
      col('Targets', 'string', 0, '', 'metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).'),
      col('MinPods', 'string', 0, '', 'minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.'),
      col('MaxPods', 'string', 0, '', 'maxReplicas is the upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.'),
      col('Replicas', 'string', 0, '', 'currentReplicas is current number of replicas of pods managed by this autoscaler.'),
      AGE,
    ],
    cells: (o, now) => [name(o), ...hpaTableCells(o), created(o, now)],
  },
  'apiregistration.k8s.io/apiservices': {
    columns: [NAME, col('Service', 'string', 0, '', 'The reference to the service that hosts this API endpoint.'), col('Available', 'string', 0, '', 'Whether this service is available.'), AGE],
    cells: (o, now) => [name(o), ...apiServiceTableCells(o), created(o, now)],
  },
  'apiextensions.k8s.io/customresourcedefinitions': {
    columns: [NAME, col('Created At', 'date')],
    cells: (o) => [name(o), str(obj(o.metadata).creationTimestamp) ?? ''],
  },
  'rbac.authorization.k8s.io/roles': { columns: [NAME, col('Created At', 'date')], cells: (o) => [name(o), str(obj(o.metadata).creationTimestamp) ?? ''] },
  'rbac.authorization.k8s.io/clusterroles': { columns: [NAME, col('Created At', 'date')], cells: (o) => [name(o), str(obj(o.metadata).creationTimestamp) ?? ''] },
  'rbac.authorization.k8s.io/rolebindings': bindingPrinter(),
  'rbac.authorization.k8s.io/clusterrolebindings': bindingPrinter(),
  'admissionregistration.k8s.io/validatingwebhookconfigurations': {
    columns: [NAME, col('Webhooks', 'integer'), AGE],
    cells: (o, now) => [name(o), arr(o.webhooks).length, created(o, now)],
  },
  'admissionregistration.k8s.io/mutatingwebhookconfigurations': {
    columns: [NAME, col('Webhooks', 'integer'), AGE],
    cells: (o, now) => [name(o), arr(o.webhooks).length, created(o, now)],
  },
  'policy/poddisruptionbudgets': {
    columns: [NAME, col('Min Available'), col('Max Unavailable'), col('Allowed Disruptions', 'integer'), AGE],
    cells: (o, now) => {
      const spec = obj(o.spec);
      const v = (x: unknown): string => (x === undefined || x === null ? 'N/A' : String(x));
      return [name(o), v(spec.minAvailable), v(spec.maxUnavailable), Number(getPath(o, 'status.disruptionsAllowed') ?? 0), created(o, now)];
    },
  },
  'scheduling.k8s.io/priorityclasses': {
    columns: [NAME, col('Value', 'integer'), col('Global-Default', 'boolean'), AGE, col('PreemptionPolicy')],
    cells: (o, now) => [name(o), Number(o.value ?? 0), o.globalDefault === true, created(o, now), str(o.preemptionPolicy) ?? 'PreemptLowerPriority'],
  },
  'networking.k8s.io/networkpolicies': {
    columns: [NAME, col('Pod-Selector'), AGE],
    cells: (o, now) => [name(o), formatLabelSelector(getPath(o, 'spec.podSelector')) || '<none>', created(o, now)],
  },
};

/** kubectl get rolebindings / clusterrolebindings: NAME ROLE AGE, with -o wide USERS GROUPS SERVICEACCOUNTS. */
function bindingPrinter(): Printer {
  return {
    columns: [NAME, col('Role'), AGE, col('Users', 'string', 1), col('Groups', 'string', 1), col('ServiceAccounts', 'string', 1)],
    cells: (o, now) => {
      const ref = obj(o.roleRef);
      const subjects = arr(o.subjects).filter(isObj);
      const of = (kind: string): string =>
        subjects
          .filter((x) => x.kind === kind)
          .map((x) => (kind === 'ServiceAccount' ? `${str(x.namespace) ?? ''}/${str(x.name) ?? ''}` : (str(x.name) ?? '')))
          .join(', ');
      return [name(o), `${str(ref.kind) ?? ''}/${str(ref.name) ?? ''}`, created(o, now), of('User'), of('Group'), of('ServiceAccount')];
    },
  };
}

// ---- JSONPath subset for additionalPrinterColumns: .a.b, .a[0], .a[*].b, .a[?(@.k=="v")].b ----

export function evalJsonPath(o: unknown, path: string): unknown[] {
  let p = path.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1);
  if (p.startsWith('$')) p = p.slice(1);
  const toks: string[] = [];
  const re = /\.([A-Za-z0-9_\-$/]+)|\[(\d+|\*|\?\(@\.[^)]*\)|'[^']*'|"[^"]*")\]/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(p)) !== null) {
    if (m.index !== consumed) return [];
    consumed = re.lastIndex;
    toks.push(m[1] !== undefined ? `.${m[1]}` : `[${m[2]!}]`);
  }
  if (consumed !== p.length) return [];
  let cur: unknown[] = [o];
  for (const t of toks) {
    const next: unknown[] = [];
    for (const c of cur) {
      if (t.startsWith('.')) {
        if (isObj(c) && c[t.slice(1)] !== undefined) next.push(c[t.slice(1)]);
      } else {
        const inner = t.slice(1, -1);
        if (inner === '*') {
          if (Array.isArray(c)) next.push(...c);
          else if (isObj(c)) next.push(...Object.values(c));
        } else if (/^\d+$/.test(inner)) {
          if (Array.isArray(c) && c[Number(inner)] !== undefined) next.push(c[Number(inner)]);
        } else if (inner.startsWith('?(@.')) {
          const f = /^\?\(@\.([A-Za-z0-9_.-]+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|([^)\s]+))\)$/.exec(inner);
          if (f && Array.isArray(c)) {
            const want = f[3] ?? f[4] ?? f[5] ?? '';
            for (const e of c) {
              const v = getPath(e, f[1]!);
              const eq = v !== undefined && String(v) === want;
              if ((f[2] === '==') === eq) next.push(e);
            }
          }
        } else {
          const k = inner.slice(1, -1);
          if (isObj(c) && c[k] !== undefined) next.push(c[k]);
        }
      }
    }
    cur = next;
  }
  return cur;
}

function crdPrinter(cols: PrinterColumn[]): Printer {
  return {
    columns: [NAME, ...cols.map((c) => col(c.name, c.type === 'date' ? 'string' : c.type, c.priority ?? 0, c.format ?? '', c.description ?? ''))],
    cells: (o, now) => [
      name(o),
      ...cols.map((c): Cell => {
        const vals = evalJsonPath(o, c.jsonPath);
        if (vals.length === 0) return null;
        const v = vals.length === 1 ? vals[0] : vals;
        if (c.type === 'integer' || c.type === 'number') return typeof v === 'number' ? v : null;
        if (c.type === 'boolean') return typeof v === 'boolean' ? v : null;
        if (c.type === 'date') return typeof v === 'string' ? age(v, now) : null;
        if (typeof v === 'string') return v;
        return JSON.stringify(v);
      }),
    ],
  };
}

const DEFAULT_PRINTER: Printer = { columns: [NAME, AGE], cells: (o, now) => [name(o), created(o, now)] };

export function printerFor(rt: ResourceType, version: string): Printer {
  if (rt.crd) {
    const cols = rt.versions.find((v) => v.name === version)?.printerColumns;
    if (cols && cols.length) return crdPrinter(cols);
    return DEFAULT_PRINTER;
  }
  return PRINTERS[`${rt.group}/${rt.resource}`] ?? DEFAULT_PRINTER;
}

/** A Table of `objects`. `includeObject`: None | Object | Metadata (PartialObjectMetadata, the default). */
export function toTable(rt: ResourceType, version: string, objects: Obj[], listMeta: Obj, includeObject: string, noHeaders = false): Obj {
  const pr = printerFor(rt, version);
  const now = Date.now();
  const rows = objects.map((o) => {
    const row: Obj = { cells: pr.cells(o, now) };
    const conditions = pr.conditions?.(o);
    if (conditions) row.conditions = conditions;
    if (includeObject === 'Object') row.object = o;
    else if (includeObject !== 'None')
      row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
    return row;
  });
  const t: Obj = { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: listMeta };
  if (!noHeaders) t.columnDefinitions = pr.columns;
  t.rows = rows;
  return t;
}
