// kube-apiserver's checks of pods, workloads, ConfigMap and Secret keys, as a user meets them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateBuiltinObject } from '../../../src/cluster/apiserver/validation-workloads.js';
import { fieldErrorString } from '../../../src/cluster/apiserver/errors.js';
import type { Obj } from '../../../src/cluster/apiserver/util.js';

const msgs = (key: string, o: Obj, old?: Obj): string[] => validateBuiltinObject(key, o, old).map(fieldErrorString);
const deploy = (spec: Obj): Obj => ({ metadata: { name: 'd' }, spec });
const template = (labels: Obj, podSpec: Obj = { containers: [{ name: 'web', image: 'nginx' }] }): Obj => ({ metadata: { labels }, spec: podSpec });

test('pods: containers, names, images, ports, env, mounts, restartPolicy', () => {
  assert.deepEqual(msgs('/pods', { spec: { containers: [{ name: 'web', image: 'nginx', ports: [{ containerPort: 80, name: 'http' }] }] } }), []);
  assert.deepEqual(msgs('/pods', { spec: {} }), ['spec.containers: Required value']);
  assert.deepEqual(msgs('/pods', { spec: { containers: [{ image: 'nginx' }, { name: 'Web', image: 'nginx' }, { name: 'a' }, { name: 'a', image: 'x' }] } }), [
    'spec.containers[0].name: Required value',
    `spec.containers[1].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
    'spec.containers[2].image: Required value',
    'spec.containers[3].name: Duplicate value: "a"',
  ]);
  assert.deepEqual(msgs('/pods', { spec: { containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 0 }, { containerPort: 80, protocol: 'tcp' }, {}] }] } }), [
    'spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive',
    'spec.containers[0].ports[1].protocol: Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"',
    'spec.containers[0].ports[2].containerPort: Required value',
  ]);
  const env = msgs('/pods', { spec: { containers: [{ name: 'c', image: 'x', env: [{ name: '1X' }], volumeMounts: [{ name: 'cfg', mountPath: '/etc/x' }] }] } });
  assert.match(env[0]!, /^spec\.containers\[0\]\.env\[0\]\.name: Invalid value: "1X": a valid environment variable name/);
  assert.equal(env[1], 'spec.containers[0].volumeMounts[0].name: Not found: "cfg"');
  assert.deepEqual(msgs('/pods', { spec: { restartPolicy: 'Sometimes', containers: [{ name: 'c', image: 'x' }] } }), ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']);
  assert.deepEqual(msgs('/pods', { spec: { initContainers: [{ name: 'c', image: 'x' }], containers: [{ name: 'c', image: 'x' }] } }), ['spec.containers[0].name: Duplicate value: "c"']);
});

test('workloads: the selector must select the template, is required, non-empty and immutable; replicas not negative; restartPolicy Always', () => {
  const good = deploy({ replicas: 2, selector: { matchLabels: { app: 'web' } }, template: template({ app: 'web', tier: 'fe' }) });
  assert.deepEqual(msgs('apps/deployments', good), []);
  assert.deepEqual(msgs('apps/deployments', deploy({ selector: { matchLabels: { app: 'web' } }, template: template({ app: 'api', tier: 'fe' }) })), [
    'spec.template.metadata.labels: Invalid value: map[string]string{"app":"api", "tier":"fe"}: `selector` does not match template `labels`',
  ]);
  assert.deepEqual(msgs('apps/deployments', deploy({ template: template({ app: 'web' }) })), ['spec.selector: Required value']);
  assert.deepEqual(msgs('apps/daemonsets', deploy({ selector: {}, template: template({ app: 'web' }) })), [
    'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset',
  ]);
  assert.deepEqual(msgs('apps/replicasets', deploy({ replicas: -1, selector: { matchLabels: { app: 'web' } }, template: template({ app: 'web' }, { restartPolicy: 'Never', containers: [{ name: 'c', image: 'x' }] }) })), [
    'spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
  ]);
  const moved = deploy({ selector: { matchLabels: { app: 'web2' } }, template: template({ app: 'web2' }) });
  assert.deepEqual(msgs('apps/deployments', moved, good), [
    'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
  ]);
  const exprs = deploy({ selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'b'] }] }, template: template({ app: 'c' }) });
  assert.equal(msgs('apps/statefulsets', exprs)[0], 'spec.template.metadata.labels: Invalid value: map[string]string{"app":"c"}: `selector` does not match template `labels`');
  assert.deepEqual(msgs('apps/deployments', deploy({ selector: { matchLabels: { app: 'web' } }, template: template({ app: 'web' }, {}) })), ['spec.template.spec.containers: Required value']);
});

test('ConfigMap and Secret keys', () => {
  assert.deepEqual(msgs('/configmaps', { data: { 'config.yaml': 'x', 'A_B-c': 'y' } }), []);
  assert.deepEqual(msgs('/configmaps', { data: { 'a b': 'x' }, binaryData: { k: 'eA==' }, }).length, 1);
  assert.match(msgs('/secrets', { data: { 'a/b': 'eA==' } })[0]!, /^data\[a\/b\]: Invalid value: "a\/b": a valid config key must consist of alphanumeric characters/);
  assert.deepEqual(msgs('/configmaps', { data: { k: 'x' }, binaryData: { k: 'eA==' } }), ['binaryData[k]: Invalid value: "k": duplicate of key present in data']);
});

test('pod updates: only images, a shorter activeDeadlineSeconds, added tolerations and removed scheduling gates', () => {
  const old: Obj = { spec: { containers: [{ name: 'c', image: 'nginx:1' }], tolerations: [{ key: 'a', operator: 'Exists' }], schedulingGates: [{ name: 'g' }], activeDeadlineSeconds: 100 } };
  const upd = (spec: Obj): string[] => msgs('/pods', { spec: { ...(old.spec as Obj), ...spec } }, old);
  assert.deepEqual(upd({ containers: [{ name: 'c', image: 'nginx:2' }] }), []);
  assert.deepEqual(upd({ tolerations: [{ key: 'a', operator: 'Exists' }, { key: 'b', operator: 'Exists' }] }), []);
  assert.deepEqual(upd({ schedulingGates: [] }), []);
  assert.deepEqual(upd({ activeDeadlineSeconds: 50 }), []);
  assert.deepEqual(upd({ activeDeadlineSeconds: 200 }), ['spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value']);
  const forbidden = 'spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';
  assert.deepEqual(upd({ containers: [{ name: 'c', image: 'nginx:1', env: [{ name: 'X', value: '1' }] }] }), [forbidden]);
  assert.deepEqual(upd({ nodeName: 'node2' }), [forbidden]);
  assert.deepEqual(upd({ tolerations: [] }), [forbidden]);
  assert.deepEqual(upd({ schedulingGates: [{ name: 'g' }, { name: 'h' }] }), [forbidden]);
  // the server's defaults do not count as changes
  const defaulted = { spec: { containers: [{ name: 'c', image: 'nginx:1', resources: { limits: { cpu: '1' } } }] } };
  assert.deepEqual(msgs('/pods', { spec: { containers: [{ name: 'c', image: 'nginx:1', resources: { limits: { cpu: '1' }, requests: { cpu: '1' } } }] } }, defaulted), []);
});
