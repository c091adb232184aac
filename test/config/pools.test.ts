// IPAddressPool rules: address syntax, overlaps, names, serviceAllocation and namespace resolution.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPrefix } from '../../src/net/ip.js';
import { parseAddress, parseConfig } from '../../src/config/index.js';
import { invalid, namespace, parse, pool, raw, valid } from './helpers.js';

test('parseAddress: CIDRs and ranges like MetalLB ParseCIDR', () => {
  const rows: [string, string[] | RegExp][] = [
    ['10.0.0.0/24', ['10.0.0.0/24']],
    ['10.0.0.5/24', ['10.0.0.0/24']], // host bits are masked, as Go's ParseCIDR
    ['2001:db8::/64', ['2001:db8::/64']],
    ['10.0.0.1-10.0.0.6', ['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6/32']],
    ['10.0.0.1 - 10.0.0.1', ['10.0.0.1/32']], // ranges are trimmed
    ['  10.0.0.0-10.0.0.255 ', ['10.0.0.0/24']],
    ['2001:db8::-2001:db8::3', ['2001:db8::/126']],
    [' 10.0.0.0/24', /surrounding spaces/], // CIDRs are not trimmed
    ['10.0.0.0/24 ', /invalid CIDR/],
    ['10.0.0.0/33', /invalid CIDR "10.0.0.0\/33"/],
    ['10.0.0.0', /invalid CIDR/],
    ['banana', /invalid CIDR/],
    ['', /invalid CIDR/],
    ['10.0.0.9-10.0.0.1', /start IP "10.0.0.9" is after the end IP "10.0.0.1"/],
    ['10.0.0.1-2001:db8::1', /same IP family/],
    ['10.0.0.1-', /invalid end IP ""/],
    ['x-10.0.0.1', /invalid start IP "x"/],
    ['10.0.0.0/24-10.0.1.0', /invalid start IP/],
  ];
  for (const [text, want] of rows) {
    const r = parseAddress(text);
    if (Array.isArray(want)) {
      assert.ok(r.ok, `${text}: ${r.ok ? '' : r.message}`);
      assert.deepEqual(r.prefixes.map(formatPrefix), want, text);
    } else {
      assert.ok(!r.ok, `${text} should be invalid`);
      assert.match(r.message, want, text);
    }
  }
});

test('pool: defaults, input order, addresses as written', () => {
  const c = valid([
    pool('b', { addresses: ['10.0.1.0/24', '10.0.2.1-10.0.2.2'] }),
    pool('a', { addresses: ['2001:db8::/64'], autoAssign: false, avoidBuggyIPs: true }, { tier: 'x' }),
  ]);
  assert.deepEqual(c.pools.map((p) => p.name), ['b', 'a']);
  const [b, a] = c.pools;
  assert.deepEqual(b?.addresses, ['10.0.1.0/24', '10.0.2.1-10.0.2.2']);
  assert.deepEqual(b?.prefixes.map(formatPrefix), ['10.0.1.0/24', '10.0.2.1/32', '10.0.2.2/32']);
  assert.equal(b?.autoAssign, true);
  assert.equal(b?.avoidBuggyIPs, false);
  assert.equal(b?.serviceAllocation, undefined);
  assert.equal(a?.autoAssign, false);
  assert.equal(a?.avoidBuggyIPs, true);
  assert.deepEqual(a?.labels, { tier: 'x' });
});

const P = 'IPAddressPool metallb-system/p';
const invalidPoolRows: [string, unknown, { field: string; message: string | string[] }][] = [
    ['bad CIDR', { addresses: ['10.0.0.0/24', '10.1.0.0/99'] }, { field: 'spec.addresses[1]', message: 'invalid CIDR "10.1.0.0/99"' }],
    ['CIDR with spaces', { addresses: [' 10.0.0.0/24'] }, { field: 'spec.addresses[0]', message: 'invalid CIDR " 10.0.0.0/24"' }],
    ['reversed range', { addresses: ['10.0.0.9-10.0.0.1'] }, { field: 'spec.addresses[0]', message: 'is after the end IP' }],
    ['mixed range', { addresses: ['10.0.0.1-::1'] }, { field: 'spec.addresses[0]', message: 'same IP family' }],
    ['empty list', { addresses: [] }, { field: 'spec.addresses', message: 'no prefixes' }],
    ['missing addresses', {}, { field: 'spec.addresses', message: 'is required' }],
    ['addresses not a list', { addresses: '10.0.0.0/24' }, { field: 'spec.addresses', message: 'must be a list' }],
    ['number entry', { addresses: [42] }, { field: 'spec.addresses[0]', message: ['must be a string', '42'] }],
    ['overlap inside the pool', { addresses: ['10.0.0.0/16', '10.0.3.0/24'] }, { field: 'spec.addresses[1]', message: ['overlaps', '"10.0.0.0/16"', 'same pool'] }],
    ['identical entries', { addresses: ['10.0.0.0/24', '10.0.0.0/24'] }, { field: 'spec.addresses[1]', message: 'overlaps' }],
    ['range overlapping CIDR', { addresses: ['10.0.0.0/24', '10.0.0.200-10.0.1.5'] }, { field: 'spec.addresses[1]', message: ['CIDR "10.0.0.200/29" (from "10.0.0.200-10.0.1.5") overlaps', '"10.0.0.0/24"'] }],
    ['autoAssign not a bool', { addresses: ['10.0.0.0/24'], autoAssign: 'yes' }, { field: 'spec.autoAssign', message: 'must be true or false, got a string ("yes")' }],
    ['unknown field', { addresses: ['10.0.0.0/24'], adresses: [] }, { field: 'spec.adresses', message: 'unknown field' }],
    ['serviceAllocation not an object', { addresses: ['10.0.0.0/24'], serviceAllocation: [] }, { field: 'spec.serviceAllocation', message: 'must be an object' }],
    ['priority not an int', { addresses: ['10.0.0.0/24'], serviceAllocation: { priority: 1.5 } }, { field: 'spec.serviceAllocation.priority', message: 'integer' }],
    ['duplicate namespaces', { addresses: ['10.0.0.0/24'], serviceAllocation: { namespaces: ['a', 'b', 'a'] } }, { field: 'spec.serviceAllocation.namespaces[2]', message: 'duplicate definition of namespaces "a"' }],
    ['duplicate namespaceSelectors', { addresses: ['10.0.0.0/24'], serviceAllocation: { namespaceSelectors: [{ matchLabels: { a: 'b' } }, { matchLabels: { a: 'b' } }] } }, { field: 'spec.serviceAllocation.namespaceSelectors[1]', message: 'duplicate definition of namespaceSelectors' }],
    ['duplicate serviceSelectors', { addresses: ['10.0.0.0/24'], serviceAllocation: { serviceSelectors: [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['x', 'y'] }] }, { matchExpressions: [{ key: 'a', operator: 'In', values: ['y', 'x'] }] }] } }, { field: 'spec.serviceAllocation.serviceSelectors[1]', message: 'duplicate definition of serviceSelectors' }],
    ['bad selector', { addresses: ['10.0.0.0/24'], serviceAllocation: { serviceSelectors: [{ matchExpressions: [{ key: 'a', operator: 'In' }] }] } }, { field: 'spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].values', message: 'needs at least one value' }],
];
for (const [name, spec, want] of invalidPoolRows) {
  test(`pool invalid: ${name}`, () => {
    invalid([pool('p', spec)], { object: P, ...want });
  });
}

test('pool: missing or malformed spec and metadata', () => {
  invalid([{ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p' } }], { object: 'IPAddressPool metallb-system/p', field: 'spec', message: 'is required' });
  invalid([raw({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p' }, spec: null })], { field: 'spec', message: 'is required' });
  invalid([raw({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p' }, spec: 'x' })], { field: 'spec', message: 'must be an object' });
  invalid([raw({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: {}, spec: { addresses: ['10.0.0.0/24'] } })], { object: 'IPAddressPool metallb-system/(unnamed object #1)', field: 'metadata.name', message: 'is required' });
  invalid([raw({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', spec: { addresses: ['10.0.0.0/24'] } })], { field: 'metadata', message: 'is required' });
  invalid([pool('Bad_Name', { addresses: ['10.0.0.0/24'] })], { field: 'metadata.name', message: 'invalid name "Bad_Name"' });
  invalid([{ ...pool('p', { addresses: ['10.0.0.0/24'] }), metadata: { name: 'p', namespace: 'other' } }],
    { object: 'IPAddressPool other/p', field: 'metadata.namespace', message: 'MetalLB namespace "metallb-system"' });
  invalid([raw({ ...pool('p', { addresses: ['10.0.0.0/24'] }), extra: 1 })], { field: 'extra', message: 'unknown field' });
});

test('pool: objects without namespace default to opts.namespace', () => {
  const obj = { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p' }, spec: { addresses: ['10.0.0.0/24'] } };
  assert.ok(parse([obj]).config);
  const r = parse([{ ...obj, metadata: { name: 'p', namespace: 'lb' } }]);
  assert.equal(r.config, undefined);
  assert.ok(parseConfig([{ ...obj, metadata: { name: 'p', namespace: 'lb' } }], { namespaces: [], nodes: [], secrets: [] }, { namespace: 'lb' }).config);
});

test('pool set: overlaps across pools and duplicate names, reported on the later object', () => {
  invalid([pool('a', { addresses: ['10.0.0.0/16'] }), pool('b', { addresses: ['10.1.0.0/16', '10.0.5.0/24'] })],
    { object: 'IPAddressPool metallb-system/b', field: 'spec.addresses[1]', message: ['CIDR "10.0.5.0/24"', 'overlaps with already defined CIDR "10.0.0.0/16"', 'pool "a"'] });
  invalid([pool('a', { addresses: ['2001:db8::/64'] }), pool('b', { addresses: ['2001:db8::/48'] })],
    { object: 'IPAddressPool metallb-system/b', field: 'spec.addresses[0]', message: 'overlaps' });
  invalid([pool('a', { addresses: ['10.0.0.0/24'] }), pool('a', { addresses: ['10.1.0.0/24'] })],
    { object: 'IPAddressPool metallb-system/a', field: 'metadata.name', message: 'duplicate definition of pool "a"' });
  // Two pools sharing a name are still two pools: an overlap between them is not "in the same pool".
  invalid([pool('a', { addresses: ['10.0.0.0/24'] }), pool('a', { addresses: ['10.0.0.0/25'] })],
    { object: 'IPAddressPool metallb-system/a', field: 'spec.addresses[0]', message: 'overlaps with already defined CIDR "10.0.0.0/24" of pool "a"' });
  // Adjacent and different families never overlap.
  valid([pool('a', { addresses: ['10.0.0.0/25'] }), pool('b', { addresses: ['10.0.0.128/25', '2001:db8::/64'] })]);
});

test('pool: every error is collected, not only the first', () => {
  const errors = invalid([pool('a', { addresses: ['x', 'y'], autoAssign: 1 }), pool('b', { addresses: [] })], []);
  assert.deepEqual(errors.map((e) => `${e.object}|${e.field}`), [
    'IPAddressPool metallb-system/a|spec.addresses[0]',
    'IPAddressPool metallb-system/a|spec.addresses[1]',
    'IPAddressPool metallb-system/a|spec.autoAssign',
    'IPAddressPool metallb-system/b|spec.addresses',
  ]);
});

test('serviceAllocation: namespaces and namespaceSelectors resolve against the cluster namespaces', () => {
  const ctx = { namespaces: [namespace('team-a', { team: 'a' }), namespace('team-b', { team: 'b' }), namespace('misc')] };
  const c = valid([pool('p', {
    addresses: ['10.0.0.0/24'],
    serviceAllocation: { priority: 5, namespaces: ['explicit'], namespaceSelectors: [{ matchLabels: { team: 'a' } }], serviceSelectors: [{ matchLabels: { app: 'web' } }] },
  })], ctx);
  const sa = c.pools[0]?.serviceAllocation;
  assert.ok(sa);
  assert.equal(sa.priority, 5);
  assert.equal(sa.restrictsNamespaces, true);
  assert.deepEqual([...sa.namespaces].sort(), ['explicit', 'team-a']);
  assert.equal(sa.serviceSelectors.length, 1);
  assert.equal(sa.serviceSelectors[0]?.matches({ app: 'web' }), true);
  assert.equal(sa.serviceSelectors[0]?.matches({ app: 'db' }), false);
});

test('serviceAllocation: selectors matching nothing still restrict (deliberate improvement over MetalLB)', () => {
  const c = valid([pool('p', { addresses: ['10.0.0.0/24'], serviceAllocation: { namespaceSelectors: [{ matchLabels: { team: 'none' } }] } })],
    { namespaces: [namespace('a', { team: 'a' })] });
  const sa = c.pools[0]?.serviceAllocation;
  assert.equal(sa?.restrictsNamespaces, true);
  assert.equal(sa?.namespaces.size, 0);
});

test('serviceAllocation: only priority (or empty) applies to every service and namespace', () => {
  for (const alloc of [{ priority: 3 }, {}]) {
    const sa = valid([pool('p', { addresses: ['10.0.0.0/24'], serviceAllocation: alloc })]).pools[0]?.serviceAllocation;
    assert.ok(sa);
    assert.equal(sa.restrictsNamespaces, false);
    assert.equal(sa.namespaces.size, 0);
    assert.equal(sa.serviceSelectors.length, 0);
  }
});
