import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPatch, mergePatch, PatchError, strategicMerge } from '../../../src/cluster/apiserver/patch.js';

test('JSON merge patch (RFC 7386)', () => {
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { a: null, b: { c: 5 }, l: [3], n: 'x' }), { b: { c: 5, d: 3 }, l: [3], n: 'x' });
  assert.deepEqual(mergePatch({ a: 1 }, { a: { b: null } }), { a: {} });
});

test('JSON patch (RFC 6902)', () => {
  const doc = { metadata: { labels: { a: 'b' } }, list: [1, 2, 3], 'x/y': { '~t': 1 } };
  const out = jsonPatch(doc, [
    { op: 'add', path: '/metadata/labels/c', value: 'd' },
    { op: 'replace', path: '/list/0', value: 9 },
    { op: 'remove', path: '/list/1' },
    { op: 'add', path: '/list/-', value: 4 },
    { op: 'copy', from: '/list/0', path: '/copied' },
    { op: 'move', from: '/copied', path: '/moved' },
    { op: 'test', path: '/x~1y/~0t', value: 1 },
  ]);
  assert.deepEqual(out, { metadata: { labels: { a: 'b', c: 'd' } }, list: [9, 3, 4], 'x/y': { '~t': 1 }, moved: 9 });
  assert.deepEqual(doc.list, [1, 2, 3], 'input not mutated');
  assert.throws(() => jsonPatch(doc, [{ op: 'test', path: '/list/0', value: 5 }]), PatchError);
  assert.throws(() => jsonPatch(doc, [{ op: 'replace', path: '/nope/x', value: 5 }]), PatchError);
  assert.throws(() => jsonPatch(doc, [{ op: 'remove', path: '/list/7' }]), PatchError);
  assert.throws(() => jsonPatch(doc, { op: 'add' }), (e: unknown) => e instanceof PatchError && e.code === 400);
  assert.throws(() => jsonPatch(doc, [{ op: 'frob', path: '/a' }]), (e: unknown) => e instanceof PatchError && e.code === 400);
  // inherited properties of JavaScript objects are not keys of the document
  assert.throws(() => jsonPatch(doc, [{ op: 'replace', path: '/metadata/labels/valueOf', value: 'x' }]), PatchError);
  assert.throws(() => jsonPatch(doc, [{ op: 'remove', path: '/metadata/toString' }]), PatchError);
  assert.throws(() => jsonPatch(doc, [{ op: 'copy', from: '/metadata/constructor', path: '/c' }]), PatchError);
});

const svc = {
  metadata: { name: 's', finalizers: ['a'] },
  spec: {
    ports: [
      { name: 'http', port: 80, targetPort: 8080 },
      { name: 'https', port: 443 },
    ],
    selector: { app: 'x' },
  },
  status: { conditions: [{ type: 'Ready', status: 'False' }] },
};

test('strategic merge patch: merge keys of built-in lists', () => {
  const out = strategicMerge(svc, {
    metadata: { finalizers: ['b'] },
    spec: { ports: [{ port: 80, targetPort: 9090 }, { port: 8443, name: 'alt' }] },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  }) as typeof svc;
  assert.deepEqual(out.metadata.finalizers, ['a', 'b']);
  assert.deepEqual(out.spec.ports, [
    { name: 'http', port: 80, targetPort: 9090 },
    { name: 'https', port: 443 },
    { port: 8443, name: 'alt' },
  ]);
  assert.deepEqual(out.status.conditions, [{ type: 'Ready', status: 'True' }]);
});

test('strategic merge patch: directives', () => {
  const del = strategicMerge(svc, { spec: { ports: [{ port: 443, $patch: 'delete' }] } }) as typeof svc;
  assert.deepEqual(del.spec.ports.map((p) => p.port), [80]);
  const rep = strategicMerge(svc, { spec: { ports: [{ $patch: 'replace' }, { port: 1 }] } }) as typeof svc;
  assert.deepEqual(rep.spec.ports, [{ port: 1 }]);
  const repMap = strategicMerge(svc, { spec: { selector: { $patch: 'replace', b: 'c' } } }) as typeof svc;
  assert.deepEqual(repMap.spec.selector, { b: 'c' });
  const delPrim = strategicMerge(svc, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }) as typeof svc;
  assert.deepEqual(delPrim.metadata.finalizers, []);
  const ordered = strategicMerge(svc, { spec: { '$setElementOrder/ports': [{ port: 443 }, { port: 80 }], ports: [{ port: 80, name: 'web' }] } }) as typeof svc;
  assert.deepEqual(ordered.spec.ports.map((p) => `${p.port}:${p.name}`), ['443:https', '80:web']);
  const retain = strategicMerge({ spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } } }, { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } });
  assert.deepEqual(retain, { spec: { strategy: { type: 'Recreate' } } });
  const nulls = strategicMerge(svc, { spec: { selector: null } }) as { spec: Record<string, unknown> };
  assert.equal(nulls.spec.selector, undefined);
});

test('strategic merge patch: containers, env, volumes in pod templates', () => {
  const dep = {
    spec: {
      template: {
        spec: {
          containers: [{ name: 'a', image: 'x:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], ports: [{ containerPort: 80 }] }],
          volumes: [{ name: 'v', emptyDir: {} }],
          tolerations: [{ key: 'k' }],
        },
      },
    },
  };
  const out = strategicMerge(dep, {
    spec: { template: { spec: { containers: [{ name: 'a', image: 'x:2', env: [{ name: 'B', value: '3' }] }, { name: 'b', image: 'y' }], tolerations: [{ key: 'z' }] } } },
  }) as typeof dep;
  const cs = out.spec.template.spec.containers as { name: string; image: string; env?: unknown[] }[];
  assert.deepEqual(cs.map((c) => `${c.name}=${c.image}`), ['a=x:2', 'b=y']);
  assert.deepEqual(cs[0]!.env, [{ name: 'A', value: '1' }, { name: 'B', value: '3' }]);
  assert.deepEqual(out.spec.template.spec.tolerations, [{ key: 'z' }], 'lists without a merge key are replaced');
  assert.deepEqual(out.spec.template.spec.volumes, [{ name: 'v', emptyDir: {} }]);
});

test('ports are keyed by number and protocol: 7946/TCP and 7946/UDP stay two ports (MetalLB memberlist)', () => {
  const ports = [
    { name: 'monitoring', containerPort: 7472, protocol: 'TCP' },
    { name: 'memberlist-tcp', containerPort: 7946, protocol: 'TCP' },
    { name: 'memberlist-udp', containerPort: 7946, protocol: 'UDP' },
  ];
  const ds = { spec: { template: { spec: { containers: [{ name: 'speaker', image: 'a', ports }] } } } };
  const patch = { spec: { template: { spec: { containers: [{ name: 'speaker', image: 'b', ports: ports.map((p) => ({ ...p })) }] } } } };
  const out = strategicMerge(ds, patch) as typeof ds;
  assert.deepEqual(out.spec.template.spec.containers[0]!.ports, ports);
  // a patch of the UDP port alone leaves the TCP one
  const udpOnly = strategicMerge(ds, { spec: { template: { spec: { containers: [{ name: 'speaker', ports: [{ containerPort: 7946, protocol: 'UDP', name: 'ml-udp' }] }] } } } }) as typeof ds;
  assert.deepEqual(udpOnly.spec.template.spec.containers[0]!.ports.map((p) => p.name), ['monitoring', 'memberlist-tcp', 'ml-udp']);
  // Service ports: port + protocol (a missing protocol is TCP)
  const svc = { spec: { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53 }] } };
  const merged = strategicMerge(svc, { spec: { ports: [{ port: 53, protocol: 'TCP', targetPort: 5353 }] } }) as { spec: { ports: { name: string; targetPort?: number }[] } };
  assert.deepEqual(merged.spec.ports, [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 5353 }]);
});
