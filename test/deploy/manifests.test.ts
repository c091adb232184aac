// Static checks of deploy/manifests and the all-in-one: YAML parses, RBAC, Deployment, DaemonSet, webhooks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { DEPLOY, ROOT, allowed, grantsFor, loadYamlDocs, walkFiles, type Obj, type Request } from './lib.js';

const NS = 'metallb-system';
const manifest = (name: string) => loadYamlDocs(join(DEPLOY, 'manifests', name));
const allInOne = loadYamlDocs(join(DEPLOY, 'metallb-ts.yaml'));
const find = (docs: Obj[], kind: string, name: string) => {
  const o = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  assert.ok(o, `${kind} ${name}`);
  return o;
};

test('every YAML file under deploy/ (except Helm templates) parses and every document is a Kubernetes object', () => {
  const files = walkFiles(DEPLOY, (p) => /\.ya?ml$/.test(p) && !p.includes(join('helm', 'metallb-ts', 'templates')));
  assert.ok(files.length >= 17);
  for (const f of files) {
    const docs = loadYamlDocs(f);
    assert.ok(docs.length > 0, relative(ROOT, f));
    const isK8s = !/helm\/metallb-ts\/(Chart|values)\.yaml$/.test(f);
    if (!isK8s) continue;
    for (const d of docs) {
      assert.equal(typeof d.apiVersion, 'string', `${relative(ROOT, f)}: apiVersion`);
      assert.equal(typeof d.kind, 'string', `${relative(ROOT, f)}: kind`);
      assert.match(d.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/, `${relative(ROOT, f)}: metadata.name`);
    }
  }
});

test('the all-in-one holds the namespace first, then the CRDs, then every manifest object, with no duplicates', () => {
  assert.equal(allInOne[0].kind, 'Namespace');
  const kinds = allInOne.map((d) => d.kind);
  const lastCrd = kinds.lastIndexOf('CustomResourceDefinition');
  assert.equal(kinds.filter((k) => k === 'CustomResourceDefinition').length, 9);
  assert.ok(kinds.slice(1, 10).every((k) => k === 'CustomResourceDefinition'));
  assert.ok(lastCrd < kinds.indexOf('Deployment'));
  const keys = allInOne.map((d) => `${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`);
  assert.equal(new Set(keys).size, keys.length);
  for (const f of ['namespace.yaml', 'rbac.yaml', 'webhook.yaml', 'controller.yaml', 'speaker.yaml']) {
    for (const d of manifest(f)) assert.deepEqual(find(allInOne, d.kind, d.metadata.name), d, `${f}: ${d.kind} ${d.metadata.name}`);
  }
  for (const d of allInOne) {
    const namespaced = !['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'ValidatingWebhookConfiguration'].includes(d.kind);
    assert.equal(d.metadata.namespace, namespaced ? NS : undefined, `${d.kind} ${d.metadata.name} namespace`);
  }
});

test('namespace metallb-system is Pod Security privileged', () => {
  const [ns] = manifest('namespace.yaml');
  assert.equal(ns.metadata.name, NS);
  for (const mode of ['enforce', 'audit', 'warn']) assert.equal(ns.metadata.labels[`pod-security.kubernetes.io/${mode}`], 'privileged');
});

const rbac = manifest('rbac.yaml');

test('RBAC: no wildcard anywhere, every binding refers to an existing role and service account', () => {
  for (const r of rbac.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role')) {
    for (const rule of r.rules as Obj[]) {
      for (const field of ['verbs', 'resources', 'apiGroups']) {
        assert.ok(!(rule[field] ?? []).includes('*'), `${r.kind} ${r.metadata.name}: no * in ${field}`);
      }
    }
  }
  const sas = rbac.filter((d) => d.kind === 'ServiceAccount').map((d) => d.metadata.name).sort();
  assert.deepEqual(sas, ['controller', 'speaker']);
  for (const b of rbac.filter((d) => d.kind.endsWith('Binding'))) {
    for (const s of b.subjects) assert.ok(sas.includes(s.name) && s.namespace === NS, `${b.metadata.name} subject`);
  }
  // grantsFor throws on a dangling roleRef.
  grantsFor(rbac, NS, 'controller');
  grantsFor(rbac, NS, 'speaker');
});

const CONFIG_KINDS = ['ipaddresspools', 'l2advertisements', 'bgpadvertisements', 'bgppeers', 'bfdprofiles', 'communities'];

// The full check, both ways, against what the processes really request: test/deploy/least-privilege.test.ts.
test('RBAC: the controller can do what it needs', () => {
  const g = grantsFor(rbac, NS, 'controller');
  const need: Request[] = [
    ...['get', 'list', 'watch'].map((verb) => ({ verb, group: '', resource: 'services', namespace: 'default' })),
    { verb: 'update', group: '', resource: 'services/status', namespace: 'default' },
    ...['create', 'patch'].map((verb) => ({ verb, group: '', resource: 'events', namespace: 'default' })),
    ...['list', 'watch'].flatMap((verb) => [
      { verb, group: '', resource: 'namespaces' },
      { verb, group: '', resource: 'nodes' },
    ]),
    ...['create', 'get', 'list', 'watch'].map((verb) => ({ verb, group: '', resource: 'secrets', namespace: NS })),
    { verb: 'update', group: '', resource: 'secrets', namespace: NS, name: 'metallb-webhook-cert' },
    ...['list', 'watch'].map((verb) => ({ verb, group: '', resource: 'configmaps', namespace: NS })),
    { verb: 'get', group: 'apps', resource: 'deployments', namespace: NS, name: 'controller' },
    ...['get', 'update'].map((verb) => ({
      verb,
      group: 'admissionregistration.k8s.io',
      resource: 'validatingwebhookconfigurations',
      name: 'metallb-webhook-configuration',
    })),
    ...CONFIG_KINDS.flatMap((resource) => ['list', 'watch'].map((verb) => ({ verb, group: 'metallb.io', resource, namespace: NS }))),
    { verb: 'update', group: 'metallb.io', resource: 'ipaddresspools/status', namespace: NS },
    { verb: 'create', group: 'metallb.io', resource: 'configurationstates', namespace: NS },
    { verb: 'patch', group: 'metallb.io', resource: 'configurationstates/status', namespace: NS, name: 'controller' },
  ];
  for (const r of need) assert.ok(allowed(g, r), `controller may ${JSON.stringify(r)}`);
});

test('RBAC: the controller gets no more than it needs', () => {
  const g = grantsFor(rbac, NS, 'controller');
  const deny: Request[] = [
    // MetalLB's rule: Services are written through one update of services/status only.
    { verb: 'patch', group: '', resource: 'services', namespace: 'default' },
    { verb: 'update', group: '', resource: 'services', namespace: 'default' },
    { verb: 'patch', group: '', resource: 'services/status', namespace: 'default' },
    { verb: 'get', group: '', resource: 'secrets', namespace: 'default' },
    { verb: 'list', group: '', resource: 'secrets', namespace: 'kube-system' },
    { verb: 'delete', group: '', resource: 'secrets', namespace: NS },
    { verb: 'update', group: '', resource: 'secrets', namespace: NS, name: 'memberlist' },
    { verb: 'delete', group: '', resource: 'services', namespace: 'default' },
    { verb: 'create', group: '', resource: 'services', namespace: 'default' },
    { verb: 'update', group: '', resource: 'nodes' },
    { verb: 'list', group: '', resource: 'pods', namespace: 'default' },
    { verb: 'get', group: 'apps', resource: 'deployments', namespace: NS, name: 'speaker' },
    { verb: 'update', group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations', name: 'someone-else' },
    { verb: 'delete', group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations', name: 'metallb-webhook-configuration' },
    { verb: 'list', group: 'metallb.io', resource: 'ipaddresspools', namespace: 'default' },
    { verb: 'update', group: 'metallb.io', resource: 'ipaddresspools', namespace: NS },
    { verb: 'patch', group: 'metallb.io', resource: 'ipaddresspools/status', namespace: NS },
    { verb: 'patch', group: 'metallb.io', resource: 'configurationstates/status', namespace: NS, name: 'speaker-node1' },
    { verb: 'update', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
    // One replica, no leader election: no Lease (the chart grants it with controller.replicas > 1).
    { verb: 'get', group: 'coordination.k8s.io', resource: 'leases', namespace: NS },
  ];
  for (const r of deny) assert.ok(!allowed(g, r), `controller may not ${JSON.stringify(r)}`);
});

test('RBAC: the speaker can read what it announces and write its status objects, nothing more', () => {
  const g = grantsFor(rbac, NS, 'speaker');
  const need: Request[] = [
    ...['services', 'nodes', 'namespaces'].flatMap((resource) => ['list', 'watch'].map((verb) => ({ verb, group: '', resource, namespace: 'default' }))),
    ...['list', 'watch'].map((verb) => ({ verb, group: 'discovery.k8s.io', resource: 'endpointslices', namespace: 'default' })),
    { verb: 'create', group: '', resource: 'events', namespace: 'default' },
    { verb: 'list', group: '', resource: 'pods', namespace: NS },
    { verb: 'watch', group: '', resource: 'secrets', namespace: NS },
    ...CONFIG_KINDS.map((resource) => ({ verb: 'watch', group: 'metallb.io', resource, namespace: NS })),
    ...['create', 'delete', 'list', 'watch'].map((verb) => ({ verb, group: 'metallb.io', resource: 'servicel2statuses', namespace: NS })),
    { verb: 'patch', group: 'metallb.io', resource: 'servicel2statuses/status', namespace: NS },
    { verb: 'create', group: 'metallb.io', resource: 'configurationstates', namespace: NS },
    { verb: 'patch', group: 'metallb.io', resource: 'configurationstates/status', namespace: NS },
  ];
  for (const r of need) assert.ok(allowed(g, r), `speaker may ${JSON.stringify(r)}`);
  const deny: Request[] = [
    { verb: 'update', group: '', resource: 'services', namespace: 'default' },
    { verb: 'update', group: '', resource: 'services/status', namespace: 'default' },
    { verb: 'get', group: '', resource: 'secrets', namespace: 'default' },
    { verb: 'create', group: '', resource: 'secrets', namespace: NS },
    { verb: 'list', group: '', resource: 'pods', namespace: 'default' },
    { verb: 'update', group: 'metallb.io', resource: 'ipaddresspools', namespace: NS },
    { verb: 'create', group: 'metallb.io', resource: 'servicel2statuses', namespace: 'default' },
    { verb: 'update', group: 'metallb.io', resource: 'servicel2statuses', namespace: NS },
  ];
  for (const r of deny) assert.ok(!allowed(g, r), `speaker may not ${JSON.stringify(r)}`);
});

function container(docs: Obj[], kind: string, name: string): { pod: Obj; c: Obj } {
  const o = find(docs, kind, name);
  assert.deepEqual(o.spec.selector.matchLabels, { app: 'metallb', component: name });
  for (const [k, v] of Object.entries(o.spec.selector.matchLabels as Obj)) assert.equal(o.spec.template.metadata.labels[k], v);
  const pod = o.spec.template.spec;
  assert.equal(pod.containers.length, 1);
  return { pod, c: pod.containers[0] };
}

const envFieldRef = (c: Obj, name: string) => (c.env as Obj[]).find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
const envValue = (c: Obj, name: string) => (c.env as Obj[]).find((e) => e.name === name)?.value;

test('controller Deployment: args, env, ports, probes, non-root read-only security context, resources', () => {
  const { pod, c } = container(manifest('controller.yaml'), 'Deployment', 'controller');
  assert.equal(pod.serviceAccountName, 'controller');
  assert.equal(c.image, 'metallb-ts:latest');
  assert.deepEqual(c.args, [
    'controller',
    '--namespace=$(METALLB_NAMESPACE)',
    '--metrics-port=7472',
    '--health-probe-port=17472',
    '--webhook-port=9443',
  ]);
  assert.equal(envFieldRef(c, 'METALLB_NAMESPACE'), 'metadata.namespace');
  const ports = Object.fromEntries((c.ports as Obj[]).map((p) => [p.name, p.containerPort]));
  assert.equal(ports.monitoring, 7472);
  assert.equal(ports['webhook-server'], 9443);
  assert.deepEqual([c.livenessProbe.httpGet.path, c.livenessProbe.httpGet.port], ['/healthz', 17472]);
  assert.deepEqual([c.readinessProbe.httpGet.path, c.readinessProbe.httpGet.port], ['/readyz', 17472]);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.equal(c.securityContext.capabilities.add, undefined);
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
  assert.equal(pod.hostNetwork, undefined);
});

test('speaker DaemonSet: hostNetwork, NET_RAW and SYS_NICE only, env from fieldRefs, memberlist secret, ports, tolerations', () => {
  const { pod, c } = container(manifest('speaker.yaml'), 'DaemonSet', 'speaker');
  assert.equal(pod.serviceAccountName, 'speaker');
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.terminationGracePeriodSeconds, 2);
  assert.equal(c.args[0], 'speaker');
  assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'], add: ['NET_RAW', 'SYS_NICE'] });
  assert.notEqual(c.securityContext.privileged, true);
  assert.equal(envFieldRef(c, 'METALLB_NODE_NAME'), 'spec.nodeName');
  assert.equal(envFieldRef(c, 'METALLB_HOST'), 'status.hostIP');
  assert.equal(envFieldRef(c, 'METALLB_ML_BIND_ADDR'), 'status.podIP');
  assert.equal(envValue(c, 'METALLB_ML_LABELS'), 'app=metallb,component=speaker');
  assert.equal(envValue(c, 'METALLB_ML_SECRET_KEY_PATH'), '/etc/ml_secret_key');
  const mount = (c.volumeMounts as Obj[]).find((m) => m.mountPath === '/etc/ml_secret_key');
  assert.ok(mount);
  const vol = (pod.volumes as Obj[]).find((v) => v.name === mount.name);
  assert.equal(vol?.secret?.secretName, 'memberlist');
  const ports = (c.ports as Obj[]).map((p) => `${p.containerPort}/${p.protocol}`).sort();
  assert.deepEqual(ports, ['7472/TCP', '7946/TCP', '7946/UDP']);
  const tolerated = (pod.tolerations as Obj[]).map((t) => t.key);
  assert.ok(tolerated.includes('node-role.kubernetes.io/control-plane'));
  // The memberlist label selector matches the speaker pods themselves.
  const podLabels = find(manifest('speaker.yaml'), 'DaemonSet', 'speaker').spec.template.metadata.labels as Obj;
  for (const kv of String(envValue(c, 'METALLB_ML_LABELS')).split(',')) {
    const [k, v] = kv.split('=');
    assert.equal(podLabels[k!], v, kv);
  }
});

test('webhooks: six paths on metallb-webhook-service:443 -> controller 9443, failurePolicy Fail, sideEffects None', () => {
  const docs = manifest('webhook.yaml');
  const svc = find(docs, 'Service', 'metallb-webhook-service');
  assert.equal(svc.metadata.namespace, NS);
  assert.equal(svc.spec.ports[0].port, 443);
  const controller = find(manifest('controller.yaml'), 'Deployment', 'controller');
  const target = (controller.spec.template.spec.containers[0].ports as Obj[]).find(
    (p) => p.name === svc.spec.ports[0].targetPort || p.containerPort === svc.spec.ports[0].targetPort,
  );
  assert.equal(target?.containerPort, 9443);
  for (const [k, v] of Object.entries(svc.spec.selector as Obj)) assert.equal(controller.spec.template.metadata.labels[k], v);
  const vwc = find(docs, 'ValidatingWebhookConfiguration', 'metallb-webhook-configuration');
  const paths = (vwc.webhooks as Obj[]).map((w) => w.clientConfig.service.path).sort();
  assert.deepEqual(paths, [
    '/validate-metallb-io-v1beta1-bfdprofile',
    '/validate-metallb-io-v1beta1-bgpadvertisement',
    '/validate-metallb-io-v1beta1-community',
    '/validate-metallb-io-v1beta1-ipaddresspool',
    '/validate-metallb-io-v1beta1-l2advertisement',
    '/validate-metallb-io-v1beta2-bgppeer',
  ]);
  for (const w of vwc.webhooks as Obj[]) {
    assert.equal(w.failurePolicy, 'Fail');
    assert.equal(w.sideEffects, 'None');
    assert.deepEqual(w.admissionReviewVersions, ['v1']);
    assert.deepEqual(
      [w.clientConfig.service.name, w.clientConfig.service.namespace, w.clientConfig.service.port],
      ['metallb-webhook-service', NS, 443],
    );
    assert.equal(w.clientConfig.caBundle, undefined, 'filled in at runtime by the controller');
    const [rule] = w.rules as Obj[];
    const resource = rule.resources[0] as string;
    assert.deepEqual(rule.apiGroups, ['metallb.io']);
    const kind = w.clientConfig.service.path.split('-').pop();
    assert.ok(resource.startsWith(kind === 'community' ? 'communit' : kind), `${resource} for ${kind}`);
    assert.deepEqual(rule.operations, resource === 'bfdprofiles' ? ['CREATE', 'UPDATE', 'DELETE'] : ['CREATE', 'UPDATE']);
  }
});
