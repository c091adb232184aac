// BFDProfile ranges and names, the echo-mode/IPv6 rule, Community aliases and values, Go durations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareCommunities, formatCommunity, formatGoDuration, parseCommunity, parseGoDuration } from '../../src/config/index.js';
import { bfd, bgpAd, community, invalid, peer, pool, valid } from './helpers.js';

test('BFD profile defaults and values', () => {
  const c = valid([bfd('d'), bfd('x', { receiveInterval: 10, transmitInterval: 60000, detectMultiplier: 255, echoInterval: 10, minimumTtl: 1, echoMode: true, passiveMode: true })]);
  assert.deepEqual(c.bfdProfiles.get('d'), { name: 'd', receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoInterval: 50, echoMode: false, passiveMode: false, minimumTtl: 254 });
  assert.equal(c.bfdProfiles.get('x')?.transmitInterval, 60000);
});

const bfdRows: [string, Record<string, unknown>, string, string][] = [
  ['receiveInterval below 10', { receiveInterval: 9 }, 'spec.receiveInterval', '9 is out of range, must be between 10 and 60000'],
  ['transmitInterval above 60000', { transmitInterval: 60001 }, 'spec.transmitInterval', 'between 10 and 60000'],
  ['detectMultiplier 1', { detectMultiplier: 1 }, 'spec.detectMultiplier', 'between 2 and 255'],
  ['echoInterval 0', { echoInterval: 0 }, 'spec.echoInterval', 'between 10 and 60000'],
  ['minimumTtl 255', { minimumTtl: 255 }, 'spec.minimumTtl', 'between 1 and 254'],
  ['echoMode not a bool', { echoMode: 'true' }, 'spec.echoMode', 'must be true or false'],
  ['unknown field', { multiplier: 3 }, 'spec.multiplier', 'unknown field'],
];
for (const [name, spec, field, message] of bfdRows) {
  test(`BFD invalid: ${name}`, () => {
    invalid([bfd('b', spec)], { object: 'BFDProfile metallb-system/b', field, message });
  });
}

test('BFD: duplicate names; echo mode on a peer reached by an IPv6 pool', () => {
  invalid([bfd('b'), bfd('b')], { object: 'BFDProfile metallb-system/b', field: 'metadata.name', message: 'found duplicate bfd profile name "b"' });
  const v6 = pool('v6', { addresses: ['2001:db8::/64'] });
  const echoPeer = peer('p', { myASN: 1, peerASN: 2, peerAddress: '10.0.0.1', bfdProfile: 'echo' });
  invalid([v6, bfd('echo', { echoMode: true }), echoPeer, bgpAd('x')],
    { object: 'BGPAdvertisement metallb-system/x', field: 'spec', message: ['pool "v6"', 'peer "p"', 'echo mode'] });
  invalid([v6, bfd('echo', { echoMode: true }), echoPeer, bgpAd('x', { peers: ['p'] })], { field: 'spec.peers', message: 'echo mode' });
  // Not reached: other peers only, IPv4-only pool, or echo off.
  valid([v6, bfd('echo', { echoMode: true }), echoPeer, bgpAd('x', { peers: ['q'] })]);
  valid([pool('v4', { addresses: ['10.0.0.0/24'] }), bfd('echo', { echoMode: true }), echoPeer, bgpAd('x')]);
  valid([v6, bfd('echo', { echoMode: false }), echoPeer, bgpAd('x')]);
});

test('community values: standard, large, format vs value errors', () => {
  const ok: [string, string][] = [['0:0', '0:0'], ['65535:65535', '65535:65535'], ['007:1', '7:1'], ['large:4294967295:0:1', 'large:4294967295:0:1']];
  for (const [text, formatted] of ok) {
    const r = parseCommunity(text);
    assert.ok(r.ok, text);
    assert.equal(formatCommunity(r.value), formatted);
  }
  const bad: [string, 'format' | 'value'][] = [
    ['65536:1', 'value'], ['-1:1', 'value'], ['a:b', 'value'], [':1', 'value'], ['large:1:2:4294967296', 'value'],
    ['LARGE:1:2:3', 'value'], ['1:2:3:4', 'value'], ['1234', 'format'], ['1:2:3', 'format'], ['no-export', 'format'], ['', 'format'],
  ];
  for (const [text, kind] of bad) {
    const r = parseCommunity(text);
    assert.ok(!r.ok, text);
    assert.equal(r.kind, kind, text);
  }
  const sorted = ['large:1:0:0', '0:2', 'large:0:5:0', '1:0'].map((t) => { const r = parseCommunity(t); assert.ok(r.ok); return r.value; })
    .sort(compareCommunities).map(formatCommunity);
  // a:b sorts as the large community (a<<16|b, 0, 0).
  assert.deepEqual(sorted, ['large:0:5:0', 'large:1:0:0', '0:2', '1:0']);
});

test('Community objects: aliases unique across objects, values validated', () => {
  const c = valid([community('a', [{ name: 'x', value: '1:1' }]), community('b', [{ name: 'y', value: 'large:1:1:1' }])]);
  assert.equal(c.communities.size, 2);
  invalid([community('a', [{ name: 'x', value: '1:1' }]), community('b', [{ name: 'x', value: '2:2' }])],
    { object: 'Community metallb-system/b', field: 'spec.communities[0].name', message: 'duplicate definition of community "x"' });
  invalid([community('a', [{ name: 'x', value: '1:99999' }])], { object: 'Community metallb-system/a', field: 'spec.communities[0].value', message: ['parsing community "x"', 'invalid community value'] });
  invalid([community('a', [{ name: 'x', value: '12' }])], { field: 'spec.communities[0].value', message: 'invalid community format' });
  invalid([community('a', [{ name: 'x' }])], { field: 'spec.communities[0].value', message: 'is required' });
  // An ad using a broken alias gets no second error.
  const errors = invalid([community('a', [{ name: 'x', value: 'bad' }]), pool('p', { addresses: ['10.0.0.0/24'] }), bgpAd('ad', { communities: ['x'] })], []);
  assert.equal(errors.length, 1);
});

test('Go durations', () => {
  const ok: [string, number][] = [['0', 0], ['90s', 90e9], ['1m30s', 90e9], ['1.5h', 5400e9], ['300ms', 3e8], ['1h2m3s4ms5us6ns', 3723004005006], ['-2s', -2e9], ['+3s', 3e9], ['.5s', 5e8], ['1µs', 1000]];
  for (const [text, ns] of ok) {
    const r = parseGoDuration(text);
    assert.ok(r.ok, text);
    assert.equal(r.nanoseconds, ns, text);
  }
  for (const bad of ['', '90', 's', '1x', '1.s.', '--1s', ' 1s', '1s ', '1e3s']) assert.ok(!parseGoDuration(bad).ok, bad);
  const fmt: [number, string][] = [[0, '0s'], [30, '30s'], [90, '1m30s'], [120, '2m0s'], [3600, '1h0m0s'], [1.5, '1.5s'], [0.3, '300ms']];
  for (const [s, text] of fmt) assert.equal(formatGoDuration(s), text);
});
