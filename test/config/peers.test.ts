// BGPPeer v1beta1/v1beta2: ASNs, addresses, timers, port, multihop, BFD reference, passwords.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bfd, invalid, node, parse, peer, secret, valid } from './helpers.js';

const base = { myASN: 64512, peerASN: 64513, peerAddress: '10.0.0.1' };
const B = 'BGPPeer metallb-system/p';

test('peer: defaults and a full v1beta2 peer', () => {
  const c = valid([peer('p', base)]);
  const p = c.peers[0];
  assert.equal(p?.peerPort, 179);
  assert.equal(p?.holdTime, undefined);
  assert.equal(p?.keepaliveTime, undefined);
  assert.equal(p?.ebgpMultiHop, false);
  assert.equal(p?.nodes, undefined);
  const full = valid([bfd('fast'), peer('p', {
    myASN: 4200000000, dynamicASN: 'external', localASN: 65000, interface: 'eth1', sourceAddress: '10.0.0.2',
    peerPort: 1179, holdTime: '1m30s', keepaliveTime: '30s', connectTime: '10s', routerID: '10.0.0.2',
    nodeSelectors: [{ matchLabels: { rack: 'r1' } }], password: 'secret', bfdProfile: 'fast', enableGracefulRestart: true,
    ebgpMultiHop: true, vrf: 'red', dualStackAddressFamily: true, disableMP: false,
  })], { nodes: [node('n1', { rack: 'r1' }), node('n2')] }).peers[0];
  assert.deepEqual({ ...full, nodeSelectors: full?.nodeSelectors.length, nodes: [...(full?.nodes ?? [])] }, {
    name: 'p', myASN: 4200000000, dynamicASN: 'external', localASN: 65000, interface: 'eth1', sourceAddress: '10.0.0.2',
    peerPort: 1179, holdTime: 90, keepaliveTime: 30, connectTime: 10, routerID: '10.0.0.2', nodeSelectors: 1, nodes: ['n1'],
    password: 'secret', bfdProfile: 'fast', enableGracefulRestart: true, ebgpMultiHop: true, vrf: 'red',
    dualStackAddressFamily: true, disableMP: false,
  });
});

test('peer timers: derived values and rounding', () => {
  const rows: [Record<string, string>, number, number][] = [
    [{ holdTime: '90s' }, 90, 30],
    [{ keepaliveTime: '20s' }, 60, 20],
    [{ holdTime: '3s' }, 3, 1],
    [{ holdTime: '0s' }, 0, 0],
    [{ holdTime: '3.9s' }, 3, 1],
    [{ holdTime: '2m', keepaliveTime: '1m' }, 120, 60],
    [{ holdTime: '1h0m0s', keepaliveTime: '500ms' }, 3600, 0],
  ];
  for (const [timers, hold, keepalive] of rows) {
    const p = valid([peer('p', { ...base, ...timers })]).peers[0];
    assert.deepEqual([p?.holdTime, p?.keepaliveTime], [hold, keepalive], JSON.stringify(timers));
  }
});

const rows: [string, unknown, string, string | string[], ('v1beta1' | 'v1beta2')?][] = [
  ['myASN missing', { peerASN: 1, peerAddress: '10.0.0.1' }, 'spec.myASN', 'missing local ASN'],
  ['myASN zero', { ...base, myASN: 0 }, 'spec.myASN', 'missing local ASN'],
  ['myASN too big', { ...base, myASN: 4294967296 }, 'spec.myASN', 'out of range'],
  ['myASN a string', { ...base, myASN: '64512' }, 'spec.myASN', 'must be an integer, got a string ("64512")'],
  ['no peerASN nor dynamicASN', { myASN: 1, peerAddress: '10.0.0.1' }, 'spec.peerASN', 'missing peer ASN and dynamicASN'],
  ['both peerASN and dynamicASN', { ...base, dynamicASN: 'internal' }, 'spec.dynamicASN', 'both peer ASN'],
  ['bad dynamicASN', { myASN: 1, dynamicASN: 'ibgp', peerAddress: '10.0.0.1' }, 'spec.dynamicASN', 'invalid dynamicASN "ibgp"'],
  ['localASN zero', { ...base, localASN: 0 }, 'spec.localASN', 'out of range'],
  ['no address nor interface', { myASN: 1, peerASN: 2 }, 'spec.peerAddress', 'peer has no Address or Interface'],
  ['both address and interface', { ...base, interface: 'eth0' }, 'spec.interface', 'both Address and Interface'],
  ['bad peerAddress', { ...base, peerAddress: '10.0.0.256' }, 'spec.peerAddress', 'invalid BGPPeer address "10.0.0.256"'],
  ['peerAddress with spaces', { ...base, peerAddress: ' 10.0.0.1' }, 'spec.peerAddress', 'invalid BGPPeer address'],
  ['bad sourceAddress', { ...base, sourceAddress: 'eth0' }, 'spec.sourceAddress', 'invalid source IP "eth0"'],
  ['bad routerID', { ...base, routerID: '1.2.3' }, 'spec.routerID', 'invalid router ID "1.2.3"'],
  ['holdTime below 3s', { ...base, holdTime: '2s' }, 'spec.holdTime', ['invalid hold time "2s"', 'must be 0 or >=3s']],
  ['holdTime 2.9s', { ...base, holdTime: '2999ms' }, 'spec.holdTime', 'must be 0 or >=3s'],
  ['keepalive derived hold below 3s', { ...base, keepaliveTime: '900ms' }, 'spec.keepaliveTime', 'must be 0 or >=3s'],
  ['keepalive above hold', { ...base, holdTime: '30s', keepaliveTime: '31s' }, 'spec.keepaliveTime', 'must be lower than holdTime'],
  ['holdTime not a duration', { ...base, holdTime: '90' }, 'spec.holdTime', ['invalid duration "90"', 'missing unit']],
  ['holdTime a number', { ...base, holdTime: 90 }, 'spec.holdTime', 'must be a duration string'],
  ['holdTime unknown unit', { ...base, holdTime: '1d' }, 'spec.holdTime', 'unknown unit "d"'],
  ['negative holdTime', { ...base, holdTime: '-5s' }, 'spec.holdTime', 'must not be negative'],
  ['connectTime fractional', { ...base, connectTime: '1.5s' }, 'spec.connectTime', 'whole number of seconds'],
  ['connectTime too long', { ...base, connectTime: '65536s' }, 'spec.connectTime', 'between 1s and 65535s'],
  ['peerPort 0 (v1beta2)', { ...base, peerPort: 0 }, 'spec.peerPort', 'out of range'],
  ['peerPort too big', { ...base, peerPort: 16385 }, 'spec.peerPort', 'between 1 and 16384'],
  ['ebgpMultiHop on iBGP', { ...base, peerASN: 64512, ebgpMultiHop: true }, 'spec.ebgpMultiHop', 'invalid ebgp-multihop parameter set for an ibgp peer'],
  ['unknown bfdProfile', { ...base, bfdProfile: 'nope' }, 'spec.bfdProfile', 'non existing bfd profile "nope"'],
  ['password with newline', { ...base, password: 'a\nb' }, 'spec.password', 'invalid characters'],
  ['interface with newline', { myASN: 1, peerASN: 2, interface: 'eth0\n' }, 'spec.interface', 'invalid characters'],
  ['password and passwordSecret', { ...base, password: 'x', passwordSecret: { name: 's' } }, 'spec.passwordSecret', 'both password and passwordSecret'],
  ['unknown field', { ...base, peerAdress: '1.2.3.4' }, 'spec.peerAdress', 'unknown field'],
  ['v1beta1: v1beta2-only field', { ...base, dynamicASN: 'internal' }, 'spec.dynamicASN', 'unknown field', 'v1beta1'],
  ['v1beta1: peerASN required', { myASN: 1, peerAddress: '10.0.0.1' }, 'spec.peerASN', 'missing peer ASN', 'v1beta1'],
  ['v1beta1: peerAddress required', { myASN: 1, peerASN: 2 }, 'spec.peerAddress', 'peerAddress is required', 'v1beta1'],
  ['v1beta1: selector values required', { ...base, nodeSelectors: [{ matchExpressions: [{ key: 'a', operator: 'Exists' }] }] }, 'spec.nodeSelectors[0].matchExpressions[0].values', 'at least one value', 'v1beta1'],
  ['duplicate nodeSelectors', { ...base, nodeSelectors: [{ matchLabels: { a: 'b' } }, { matchLabels: { a: 'b' } }] }, 'spec.nodeSelectors[1]', 'duplicate definition of nodeSelectors'],
];
for (const [name, spec, field, message, version] of rows) {
  test(`peer invalid: ${name}`, () => {
    invalid([peer('p', spec, version)], { object: B, field, message });
  });
}

test('peer: missing spec is one error, not a cascade', () => {
  const errors = invalid([{ apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'p' } }], { object: B, field: 'spec', message: 'is required' });
  assert.equal(errors.length, 1);
});

test('peer v1beta1: accepted, port 0 means the default, unset timers stay unset', () => {
  const p = valid([peer('p', { ...base, peerPort: 0, holdTime: '90s' }, 'v1beta1'), peer('q', { ...base, peerAddress: '10.0.0.2' }, 'v1beta1')]).peers;
  assert.equal(p[0]?.peerPort, 179);
  assert.equal(p[0]?.holdTime, 90);
  assert.equal(p[1]?.holdTime, undefined);
});

test('peer passwordSecret: resolved from a basic-auth Secret in the MetalLB namespace', () => {
  const withSecret = { ...base, passwordSecret: { name: 'bgp', namespace: 'metallb-system' } };
  const ok = valid([peer('p', withSecret)], { secrets: [secret('bgp', { password: Buffer.from('s3cret').toString('base64') })] }).peers[0];
  assert.equal(ok?.password, 's3cret');
  assert.deepEqual(ok?.passwordSecret, { name: 'bgp', namespace: 'metallb-system' });
  const fromStringData = valid([peer('p', { ...base, passwordSecret: { name: 'bgp' } })],
    { secrets: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bgp' }, type: 'kubernetes.io/basic-auth', stringData: { password: 'plain' } }] }).peers[0];
  assert.equal(fromStringData?.password, 'plain');
  // The generator's `passwordSecret: {}` means no secret.
  assert.equal(valid([peer('p', { ...base, passwordSecret: {} })]).peers[0]?.passwordSecret, undefined);

  invalid([peer('p', withSecret)], { object: B, field: 'spec.passwordSecret.name', message: 'secret "metallb-system/bgp" not found' });
  invalid([peer('p', withSecret)], { field: 'spec.passwordSecret.name', message: 'type "kubernetes.io/basic-auth" is expected' },
    { secrets: [secret('bgp', { password: 'eA==' }, 'Opaque')] });
  invalid([peer('p', withSecret)], { field: 'spec.passwordSecret.name', message: 'password not specified' },
    { secrets: [secret('bgp', { username: 'eA==' })] });
  invalid([peer('p', { ...base, passwordSecret: { name: 'bgp', namespace: 'other' } })], { field: 'spec.passwordSecret.namespace', message: 'MetalLB namespace' },
    { secrets: [secret('bgp', { password: 'eA==' })] });
  // A secret of the same name in another namespace does not count.
  invalid([peer('p', withSecret)], { field: 'spec.passwordSecret.name', message: 'not found' },
    { secrets: [{ ...secret('bgp', { password: 'eA==' }), metadata: { name: 'bgp', namespace: 'default' } }] });
});

test('peers: duplicate names', () => {
  invalid([peer('p', base), peer('p', { ...base, peerAddress: '10.0.0.9' }, 'v1beta1')], { object: B, field: 'metadata.name', message: 'duplicate definition of BGPPeer "p"' });
});

test('peers: IPv6 addresses, BFD and large communities are accepted (our speaker supports them, unlike MetalLB native)', () => {
  valid([bfd('b', { echoMode: false }), peer('p', { myASN: 1, peerASN: 2, peerAddress: '2001:db8::1', sourceAddress: 'fe80::1', bfdProfile: 'b', keepaliveTime: '10s' })]);
});

test('peers: deprecation warnings (v1beta1, disableMP) do not block the config', () => {
  const r = parse([peer('old', base, 'v1beta1'), peer('mp', { ...base, peerAddress: '10.0.0.9', disableMP: true })]);
  assert.ok(r.config);
  assert.deepEqual(r.warnings?.map((w) => `${w.object}|${w.field}`), ['BGPPeer metallb-system/old|apiVersion', 'BGPPeer metallb-system/mp|spec.disableMP']);
});
