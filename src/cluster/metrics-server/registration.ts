// How a cluster finds metrics-server: the objects of metrics-server's release manifest (components.yaml, v0.7) that
// are not its Deployment — its RBAC (the aggregated `system:aggregated-metrics-reader` role that gives `view`, `edit`
// and `admin` the metrics, its own read access to nodes and pods, the auth-delegator and auth-reader bindings for
// delegated authentication and authorization), the `kube-system/metrics-server` Service and the
// `v1beta1.metrics.k8s.io` APIService. In the lab metrics-server runs on the control-plane host, outside any pod, so
// the Service has no selector and its EndpointSlice and Endpoints name that host, as one registers any API server
// that lives outside the cluster.
import { isIP } from 'node:net';

type Obj = Record<string, unknown>;

export const METRICS_SERVER_SA = 'system:serviceaccount:kube-system:metrics-server';
const LABELS = { 'k8s-app': 'metrics-server' };
const SA_SUBJECT = [{ kind: 'ServiceAccount', name: 'metrics-server', namespace: 'kube-system' }];

export function metricsServerRegistration(address: string, port: number): Obj[] {
  const meta = (name: string, extra: Obj = {}): Obj => ({ name, labels: { ...LABELS }, ...extra });
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('metrics-server', { namespace: 'kube-system' }) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {
        name: 'system:aggregated-metrics-reader',
        labels: {
          ...LABELS,
          'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
          'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
          'rbac.authorization.k8s.io/aggregate-to-view': 'true',
        },
      },
      rules: [{ apiGroups: ['metrics.k8s.io'], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: meta('system:metrics-server'),
      rules: [
        // nodes/stats: the Summary API this metrics-server scrapes (metrics-server < 0.6 did too)
        { apiGroups: [''], resources: ['nodes/metrics', 'nodes/stats'], verbs: ['get'] },
        { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta('metrics-server-auth-reader', { namespace: 'kube-system' }),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' },
      subjects: SA_SUBJECT,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta('metrics-server:system:auth-delegator'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: SA_SUBJECT,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta('system:metrics-server'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:metrics-server' },
      subjects: SA_SUBJECT,
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('metrics-server', { namespace: 'kube-system' }),
      spec: { ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: port }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: meta('metrics-server-lab', {
        namespace: 'kube-system',
        labels: { ...LABELS, 'kubernetes.io/service-name': 'metrics-server', 'endpointslice.kubernetes.io/managed-by': 'metallb-lab' },
      }),
      addressType: isIP(address) === 6 ? 'IPv6' : 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true } }],
      ports: [{ name: 'https', port, protocol: 'TCP' }],
    },
    {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: meta('metrics-server', { namespace: 'kube-system', labels: { ...LABELS, 'endpointslice.kubernetes.io/skip-mirror': 'true' } }),
      subsets: [{ addresses: [{ ip: address }], ports: [{ name: 'https', port, protocol: 'TCP' }] }],
    },
    {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: meta('v1beta1.metrics.k8s.io'),
      spec: {
        group: 'metrics.k8s.io',
        groupPriorityMinimum: 100,
        insecureSkipTLSVerify: true,
        service: { name: 'metrics-server', namespace: 'kube-system' },
        version: 'v1beta1',
        versionPriority: 100,
      },
    },
  ];
}
