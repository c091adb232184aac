// L2Advertisement and BGPAdvertisement: pool and node resolution, aggregation, LOCAL_PREF, communities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bgpAd, community, invalid, l2, node, pool, valid } from './helpers.js';

const pools = [
  pool('a', { addresses: ['10.0.0.0/24'] }, { tier: 'prod' }),
  pool('b', { addresses: ['10.1.0.0/24', '2001:db8::/64'] }, { tier: 'dev' }),
];
const nodes = [node('n1', { rack: 'r1' }), node('n2', { rack: 'r2' }), node('n3', { rack: 'r1' })];

test('ad pool selection: both lists empty = all pools; names and selectors union; unknown names ignored', () => {
  const c = valid([...pools,
    l2('all'),
    l2('named', { ipAddressPools: ['a', 'does-not-exist'] }),
    l2('selected', { ipAddressPoolSelectors: [{ matchLabels: { tier: 'dev' } }] }),
    l2('both', { ipAddressPools: ['a'], ipAddressPoolSelectors: [{ matchLabels: { tier: 'dev' } }] }),
    l2('nothing', { ipAddressPoolSelectors: [{ matchLabels: { tier: 'none' } }] }),
  ]);
  assert.deepEqual(c.l2Advertisements.map((a) => [a.name, [...a.pools].sort()]), [
    ['all', ['a', 'b']], ['named', ['a']], ['selected', ['b']], ['both', ['a', 'b']], ['nothing', []],
  ]);
});

test('ad nodes: nodeSelectors resolve to node names; no selectors = every node (undefined)', () => {
  const c = valid([...pools,
    l2('r1', { nodeSelectors: [{ matchLabels: { rack: 'r1' } }], interfaces: ['eth0'], preferredNodeSelectors: [{ weight: 50, preference: { matchLabels: { rack: 'r1' } } }] }),
    bgpAd('any'),
    bgpAd('r2', { nodeSelectors: [{ matchLabels: { rack: 'r2' } }], localPref: 0 }),
  ], { nodes });
  const [r1] = c.l2Advertisements;
  assert.deepEqual([...(r1?.nodes ?? [])].sort(), ['n1', 'n3']);
  assert.deepEqual(r1?.interfaces, ['eth0']);
  assert.equal(r1?.preferredNodeSelectors[0]?.weight, 50);
  assert.equal(c.bgpAdvertisements[0]?.nodes, undefined);
  assert.deepEqual([...(c.bgpAdvertisements[1]?.nodes ?? [])], ['n2']);
});

test('BGP ad defaults and communities (literals, large, aliases)', () => {
  const c = valid([...pools, community('c', [{ name: 'no-export', value: '65535:65281' }, { name: 'big', value: 'large:1:2:3' }]),
    bgpAd('x', { communities: ['64512:1', 'no-export', 'large:4294967295:0:1', 'big'], peers: ['p1'] })]);
  const ad = c.bgpAdvertisements[0];
  assert.equal(ad?.aggregationLength, 32);
  assert.equal(ad?.aggregationLengthV6, 128);
  assert.equal(ad?.localPref, 0);
  assert.deepEqual(ad?.peers, ['p1']);
  assert.deepEqual(ad?.communities, [
    { kind: 'standard', high: 64512, low: 1 },
    { kind: 'standard', high: 65535, low: 65281 },
    { kind: 'large', globalAdministrator: 4294967295, localData1: 0, localData2: 1 },
    { kind: 'large', globalAdministrator: 1, localData1: 2, localData2: 3 },
  ]);
  assert.deepEqual(c.communities.get('no-export'), { kind: 'standard', high: 65535, low: 65281 });
});

const A = 'BGPAdvertisement metallb-system/x';
const bgpInvalidRows: [string, unknown, string, string | string[]][] = [
  ['aggregationLength > 32', { aggregationLength: 33 }, 'spec.aggregationLength', 'invalid aggregation length 33 for IPv4'],
  ['aggregationLength < 1 (CRD minimum)', { aggregationLength: 0 }, 'spec.aggregationLength', 'at least 1'],
  ['aggregationLengthV6 > 128', { aggregationLengthV6: 129 }, 'spec.aggregationLengthV6', 'invalid aggregation length 129 for IPv6'],
  ['aggregationLength shorter than a pool prefix', { ipAddressPools: ['a'], aggregationLength: 16 }, 'spec.aggregationLength', ['invalid aggregation length 16', 'prefix 24 in pool "a" is more specific', '"10.0.0.0/24"']],
  ['aggregationLengthV6 shorter than a v6 prefix', { ipAddressPools: ['b'], aggregationLengthV6: 48 }, 'spec.aggregationLengthV6', ['invalid aggregation length 48', 'prefix 64']],
  ['serviceSelectors with aggregationLength', { serviceSelectors: [{ matchLabels: { a: 'b' } }], aggregationLength: 30, ipAddressPools: ['a'] }, 'spec.aggregationLength', 'mutually exclusive'],
  ['serviceSelectors with aggregationLengthV6', { serviceSelectors: [{ matchLabels: { a: 'b' } }], aggregationLengthV6: 64, ipAddressPools: ['a'] }, 'spec.aggregationLengthV6', 'mutually exclusive'],
  ['bad standard community', { communities: ['65536:1'] }, 'spec.communities[0]', 'invalid community value "65536:1"'],
  ['bad large community', { communities: ['large:1:2:x'] }, 'spec.communities[0]', 'invalid community value'],
  ['wrong large marker', { communities: ['big:1:2:3'] }, 'spec.communities[0]', 'large:A:B:C'],
  ['unknown alias', { communities: ['no-export'] }, 'spec.communities[0]', ['"no-export" is neither a defined community alias', 'invalid community format']],
  ['duplicate community', { communities: ['1:1', '1:1'] }, 'spec.communities[1]', 'duplicate definition of community "1:1"'],
  ['duplicate peers', { peers: ['p', 'p'] }, 'spec.peers[1]', 'duplicate definition of peers "p"'],
  ['duplicate pools', { ipAddressPools: ['a', 'a'] }, 'spec.ipAddressPools[1]', 'duplicate definition of ipAddressPools "a"'],
  ['duplicate pool selectors', { ipAddressPoolSelectors: [{ matchLabels: { t: 'a' } }, { matchLabels: { t: 'a' } }] }, 'spec.ipAddressPoolSelectors[1]', 'duplicate definition of ipAddressPoolSelectors'],
  ['duplicate node selectors', { nodeSelectors: [{}, {}] }, 'spec.nodeSelectors[1]', 'duplicate definition of nodeSelectors'],
  ['localPref negative', { localPref: -1 }, 'spec.localPref', 'out of range'],
  ['localPref too big', { localPref: 4294967296 }, 'spec.localPref', 'out of range'],
  ['unknown field', { aggregationLenght: 24 }, 'spec.aggregationLenght', 'unknown field'],
  ['peers not a list', { peers: 'p' }, 'spec.peers', 'must be a list'],
];
for (const [name, spec, field, message] of bgpInvalidRows) {
  test(`BGP ad invalid: ${name}`, () => {
    invalid([...pools, bgpAd('x', spec)], { object: A, field, message });
  });
}

test('aggregationLength: a range uses its shortest summarized prefix; longer lengths are fine', () => {
  // 10.2.0.0-10.2.1.255 summarizes to one /23.
  valid([pool('r', { addresses: ['10.2.0.0-10.2.1.255'] }), bgpAd('x', { aggregationLength: 23 })]);
  invalid([pool('r', { addresses: ['10.2.0.0-10.2.1.255'] }), bgpAd('x', { aggregationLength: 22 })], { field: 'spec.aggregationLength', message: 'prefix 23' });
  // 10.2.0.1-10.2.0.6: shortest summarized mask is /31, so 31 is accepted.
  valid([pool('r', { addresses: ['10.2.0.1-10.2.0.6'] }), bgpAd('x', { aggregationLength: 31 })]);
  valid([pool('v6', { addresses: ['2001:db8::/64'] }), bgpAd('x', { aggregationLength: 8, aggregationLengthV6: 64 })]);
  // serviceSelectors with the default lengths spelled out are allowed.
  valid([...pools, bgpAd('x', { serviceSelectors: [{ matchLabels: { a: 'b' } }], aggregationLength: 32, aggregationLengthV6: 128 })]);
});

test('LOCAL_PREF conflict rule and its exceptions', () => {
  const v4 = pool('v4', { addresses: ['10.0.0.0/24'] });
  const dual = pool('dual', { addresses: ['10.1.0.0/24', '2001:db8::/64'] });
  invalid([v4, bgpAd('one', { localPref: 100 }), bgpAd('x', { localPref: 200 })],
    { object: A, field: 'spec.localPref', message: ['invalid local preference 200', '"one"', 'local preference 100', 'pool "v4"'] });
  // Same localPref: fine.
  valid([v4, bgpAd('one', { localPref: 100 }), bgpAd('two', { localPref: 100 })]);
  // (a) different aggregation length for the v4-only pool.
  valid([v4, bgpAd('one', { localPref: 100 }), bgpAd('two', { localPref: 200, aggregationLength: 24 })]);
  // (a) dual pool: both lengths must differ.
  invalid([dual, bgpAd('one', { localPref: 100 }), bgpAd('x', { localPref: 200, aggregationLength: 24 })], { field: 'spec.localPref' });
  valid([dual, bgpAd('one', { localPref: 100 }), bgpAd('two', { localPref: 200, aggregationLength: 24, aggregationLengthV6: 64 })]);
  // (b) disjoint peer lists; a shared peer conflicts; an empty list means all peers.
  valid([v4, bgpAd('one', { localPref: 100, peers: ['p1'] }), bgpAd('two', { localPref: 200, peers: ['p2'] })]);
  invalid([v4, bgpAd('one', { localPref: 100, peers: ['p1', 'p2'] }), bgpAd('x', { localPref: 200, peers: ['p2'] })], { field: 'spec.localPref' });
  invalid([v4, bgpAd('one', { localPref: 100 }), bgpAd('x', { localPref: 200, peers: ['p2'] })], { field: 'spec.localPref' });
  // (c) disjoint node sets.
  valid([v4, bgpAd('one', { localPref: 100, nodeSelectors: [{ matchLabels: { rack: 'r1' } }] }), bgpAd('two', { localPref: 200, nodeSelectors: [{ matchLabels: { rack: 'r2' } }] })], { nodes });
  invalid([v4, bgpAd('one', { localPref: 100, nodeSelectors: [{ matchLabels: { rack: 'r1' } }] }), bgpAd('x', { localPref: 200 })], { field: 'spec.localPref' }, { nodes });
  // Different pools never conflict; ads with serviceSelectors are checked by the speaker per service.
  valid([v4, dual, bgpAd('one', { localPref: 100, ipAddressPools: ['v4'] }), bgpAd('two', { localPref: 200, ipAddressPools: ['dual'] })]);
  valid([v4, bgpAd('one', { localPref: 100 }), bgpAd('two', { localPref: 200, serviceSelectors: [{ matchLabels: { a: 'b' } }] })]);
});

const L = 'L2Advertisement metallb-system/x';
const l2InvalidRows: [string, unknown, string, string][] = [
  ['weight out of range', { preferredNodeSelectors: [{ weight: 101, preference: {} }] }, 'spec.preferredNodeSelectors[0].weight', 'between 1 and 100'],
  ['weight missing', { preferredNodeSelectors: [{ preference: {} }] }, 'spec.preferredNodeSelectors[0].weight', 'is required'],
  ['preference missing', { preferredNodeSelectors: [{ weight: 1 }] }, 'spec.preferredNodeSelectors[0].preference', 'is required'],
  ['interfaces not strings', { interfaces: [1] }, 'spec.interfaces[0]', 'must be a string'],
  ['duplicate serviceSelectors', { serviceSelectors: [{ matchLabels: { a: 'b' } }, { matchLabels: { a: 'b' } }] }, 'spec.serviceSelectors[1]', 'duplicate definition of serviceSelectors'],
  ['bad node selector', { nodeSelectors: [{ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }] }, 'spec.nodeSelectors[0].matchExpressions[0].values', 'must not have values'],
  ['BGP-only field', { localPref: 1 }, 'spec.localPref', 'unknown field'],
];
for (const [name, spec, field, message] of l2InvalidRows) {
  test(`L2 ad invalid: ${name}`, () => {
    invalid([...pools, l2('x', spec)], { object: L, field, message });
  });
}

test('duplicate advertisement names are rejected', () => {
  invalid([...pools, l2('x'), l2('x', { interfaces: ['eth1'] })], { object: L, field: 'metadata.name', message: 'duplicate definition of L2Advertisement "x"' });
  invalid([...pools, bgpAd('x'), bgpAd('x')], { object: A, field: 'metadata.name', message: 'duplicate' });
});
