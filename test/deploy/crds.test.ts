import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEPLOY, loadCrds, type Obj } from './lib.js';
import { outdatedFiles, CRD_DIR, HELM_CRD_DIR } from '../../deploy/build-all-in-one.js';

const PLURALS = [
  'ipaddresspools',
  'l2advertisements',
  'bgpadvertisements',
  'bgppeers',
  'bfdprofiles',
  'communities',
  'servicel2statuses',
  'servicebgpstatuses',
  'configurationstates',
];

const crds = loadCrds();
const byPlural = new Map<string, Obj>(crds.map((c) => [c.spec.names.plural as string, c]));

/** Every schema node is structural: it has a type, or explicitly preserves unknown fields / is int-or-string. */
function nonStructural(s: Obj, path: string, out: string[]): string[] {
  if (!s.type && !s['x-kubernetes-preserve-unknown-fields'] && !s['x-kubernetes-int-or-string']) out.push(path);
  for (const [k, v] of Object.entries((s.properties ?? {}) as Obj)) nonStructural(v as Obj, `${path}.${k}`, out);
  if (s.items) nonStructural(s.items as Obj, `${path}[]`, out);
  if (typeof s.additionalProperties === 'object') nonStructural(s.additionalProperties as Obj, `${path}{}`, out);
  for (const kw of ['anyOf', 'allOf', 'oneOf', 'not']) {
    // Structural schemas may not declare types or defaults inside logical junctors; we do not use them at all.
    assert.equal(s[kw], undefined, `${path}: ${kw} is not used`);
  }
  if (s.properties && s.additionalProperties !== undefined) out.push(`${path} (properties and additionalProperties)`);
  return out;
}

function prop(crd: Obj, version: string, path: string): Obj {
  const v = (crd.spec.versions as Obj[]).find((x) => x.name === version);
  assert.ok(v, `${crd.metadata.name} has version ${version}`);
  let s = v.schema.openAPIV3Schema as Obj;
  for (const p of path.split('.')) {
    s = p === '[]' ? s.items : s.properties?.[p];
    assert.ok(s, `${crd.metadata.name} ${version}: ${path}`);
  }
  return s;
}

test('deploy/crds has exactly the nine metallb.io CRDs, one per file', () => {
  const files = readdirSync(CRD_DIR).sort();
  assert.deepEqual(files, PLURALS.map((p) => `metallb.io_${p}.yaml`).sort());
  assert.equal(crds.length, 9);
  for (const c of crds) {
    assert.equal(c.apiVersion, 'apiextensions.k8s.io/v1');
    assert.equal(c.kind, 'CustomResourceDefinition');
    assert.equal(c.spec.group, 'metallb.io');
    assert.equal(c.spec.scope, 'Namespaced');
    assert.equal(c.metadata.name, `${c.spec.names.plural}.metallb.io`);
    assert.equal(c.spec.names.listKind, `${c.spec.names.kind}List`);
    assert.equal(c.spec.names.singular, c.spec.names.kind.toLowerCase());
    assert.ok(c.spec.names.categories.includes('metallb'));
  }
  assert.deepEqual(
    crds.map((c) => c.spec.names.kind).sort(),
    [
      'BFDProfile',
      'BGPAdvertisement',
      'BGPPeer',
      'Community',
      'ConfigurationState',
      'IPAddressPool',
      'L2Advertisement',
      'ServiceBGPStatus',
      'ServiceL2Status',
    ],
  );
});

test('every CRD version has a structural schema, a status subresource and exactly one storage version', () => {
  const shortNames = new Set<string>();
  for (const c of crds) {
    const versions = c.spec.versions as Obj[];
    assert.equal(versions.filter((v) => v.storage).length, 1, `${c.metadata.name}: one storage version`);
    for (const v of versions) {
      assert.equal(v.served, true);
      assert.deepEqual(v.subresources, { status: {} }, `${c.metadata.name} ${v.name} status subresource`);
      const root = v.schema.openAPIV3Schema as Obj;
      assert.equal(root.type, 'object');
      assert.deepEqual(nonStructural(root, `${c.metadata.name}/${v.name}`, []), []);
      assert.equal(root.properties.metadata.type, 'object');
      assert.equal(root.properties.status.type, 'object');
      for (const col of (v.additionalPrinterColumns ?? []) as Obj[]) {
        assert.ok(['string', 'boolean', 'integer', 'number', 'date'].includes(col.type), `${col.name} type`);
        assert.match(col.jsonPath, /^\.(spec|status|metadata)\./);
      }
    }
    for (const s of c.spec.names.shortNames ?? []) {
      assert.ok(!shortNames.has(s), `short name ${s} used once`);
      shortNames.add(s);
    }
  }
});

test('IPAddressPool: addresses required, autoAssign defaults to true, MetalLB print columns', () => {
  const c = byPlural.get('ipaddresspools')!;
  const v = c.spec.versions[0];
  assert.equal(v.name, 'v1beta1');
  assert.deepEqual(v.schema.openAPIV3Schema.required, ['spec']);
  assert.deepEqual(prop(c, 'v1beta1', 'spec').required, ['addresses']);
  assert.equal(prop(c, 'v1beta1', 'spec.autoAssign').default, true);
  assert.equal(prop(c, 'v1beta1', 'spec.avoidBuggyIPs').default, false);
  assert.equal(prop(c, 'v1beta1', 'spec.serviceAllocation.namespaceSelectors.[].matchLabels').type, 'object');
  assert.deepEqual(
    (v.additionalPrinterColumns as Obj[]).map((x) => [x.name, x.jsonPath]).slice(0, 3),
    [
      ['Auto Assign', '.spec.autoAssign'],
      ['Avoid Buggy IPs', '.spec.avoidBuggyIPs'],
      ['Addresses', '.spec.addresses'],
    ],
  );
  assert.deepEqual(prop(c, 'v1beta1', 'status').required, [
    'assignedIPv4',
    'assignedIPv6',
    'availableIPv4',
    'availableIPv6',
  ]);
});

test('BGPPeer: v1beta1 served+deprecated, v1beta2 storage, conversion None, peerPort default 179', () => {
  const c = byPlural.get('bgppeers')!;
  const [b1, b2] = c.spec.versions as Obj[];
  assert.equal(b1.name, 'v1beta1');
  assert.equal(b1.storage, false);
  assert.equal(b1.deprecated, true);
  assert.equal(b1.deprecationWarning, 'v1beta1 is deprecated, please use v1beta2');
  assert.equal(b2.name, 'v1beta2');
  assert.equal(b2.storage, true);
  assert.equal(b2.deprecated, undefined);
  assert.deepEqual(c.spec.conversion, { strategy: 'None' });
  assert.equal(prop(c, 'v1beta2', 'spec.peerPort').default, 179);
  assert.equal(prop(c, 'v1beta2', 'spec.peerPort').maximum, 16384);
  assert.equal(prop(c, 'v1beta1', 'spec.peerPort').default, undefined);
  assert.deepEqual(prop(c, 'v1beta2', 'spec').required, ['myASN']);
  assert.deepEqual(prop(c, 'v1beta1', 'spec').required, ['myASN', 'peerASN', 'peerAddress']);
  assert.deepEqual(prop(c, 'v1beta2', 'spec.dynamicASN').enum, ['internal', 'external']);
  assert.equal(prop(c, 'v1beta2', 'spec.myASN').maximum, 4294967295);
  // Every v1beta1 field exists in v1beta2 with the same type, so `conversion: None` loses nothing going up.
  for (const [k, v] of Object.entries(prop(c, 'v1beta1', 'spec').properties as Obj)) {
    assert.equal(prop(c, 'v1beta2', `spec.${k}`).type, (v as Obj).type, k);
  }
  assert.deepEqual(
    (b2.additionalPrinterColumns as Obj[]).map((x) => x.name).slice(0, 4),
    ['Address', 'ASN', 'BFD Profile', 'Multi Hops'],
  );
  // CEL rules MetalLB has (enforced by real API servers).
  assert.ok(prop(c, 'v1beta2', 'spec.enableGracefulRestart')['x-kubernetes-validations'][0].rule === 'self == oldSelf');
  assert.equal(prop(c, 'v1beta2', 'spec.connectTime')['x-kubernetes-validations'].length, 2);
});

test('ranges and enums from the reference', () => {
  const l2 = byPlural.get('l2advertisements')!;
  const w = prop(l2, 'v1beta1', 'spec.preferredNodeSelectors.[].weight');
  assert.deepEqual([w.minimum, w.maximum], [1, 100]);
  assert.deepEqual(prop(l2, 'v1beta1', 'spec.preferredNodeSelectors.[]').required, ['preference', 'weight']);
  const bgpAdv = byPlural.get('bgpadvertisements')!;
  assert.equal(prop(bgpAdv, 'v1beta1', 'spec.aggregationLength').minimum, 1);
  assert.equal(prop(bgpAdv, 'v1beta1', 'spec.aggregationLength').default, 32);
  assert.equal(prop(bgpAdv, 'v1beta1', 'spec.aggregationLengthV6').default, 128);
  assert.ok(prop(bgpAdv, 'v1beta1', 'spec')['x-kubernetes-validations'][0].rule.includes('serviceSelectors'));
  const bfd = byPlural.get('bfdprofiles')!;
  for (const f of ['receiveInterval', 'transmitInterval', 'echoInterval']) {
    const s = prop(bfd, 'v1beta1', `spec.${f}`);
    assert.deepEqual([s.minimum, s.maximum], [10, 60000], f);
  }
  assert.deepEqual([prop(bfd, 'v1beta1', 'spec.detectMultiplier').minimum, prop(bfd, 'v1beta1', 'spec.detectMultiplier').maximum], [2, 255]);
  assert.deepEqual([prop(bfd, 'v1beta1', 'spec.minimumTtl').minimum, prop(bfd, 'v1beta1', 'spec.minimumTtl').maximum], [1, 254]);
  const cs = byPlural.get('configurationstates')!;
  assert.deepEqual(prop(cs, 'v1beta1', 'status.result').enum, ['Valid', 'Invalid', 'Unknown']);
  for (const plural of ['servicel2statuses', 'servicebgpstatuses']) {
    for (const f of ['node', 'serviceName', 'serviceNamespace']) {
      assert.equal(prop(byPlural.get(plural)!, 'v1beta1', `status.${f}`)['x-kubernetes-validations'][0].rule, 'self == oldSelf');
    }
  }
});

test('generated files (CRDs, Helm crds/, all-in-one) are up to date; Helm CRDs equal deploy/crds', () => {
  assert.deepEqual(outdatedFiles(), [], 'run: node --import tsx deploy/build-all-in-one.ts');
  for (const f of readdirSync(CRD_DIR)) {
    const text = readFileSync(join(CRD_DIR, f), 'utf8');
    assert.equal(readFileSync(join(HELM_CRD_DIR, f), 'utf8'), text, f);
    // Plain YAML for every consumer: no anchors/aliases (the generator must not share objects between fields).
    assert.doesNotMatch(text, /(:|-)\s+[&*][A-Za-z0-9_]+\s*$/m, `${f} has a YAML anchor or alias`);
  }
  assert.deepEqual(readdirSync(HELM_CRD_DIR).sort(), readdirSync(CRD_DIR).sort());
  assert.ok(readFileSync(join(DEPLOY, 'metallb-ts.yaml'), 'utf8').includes('name: ipaddresspools.metallb.io'));
});
