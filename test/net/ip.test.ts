import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatIP, formatPrefix, isBuggyIP, parseIP, parsePrefix, prefixContains, prefixesOverlap, prefixLast, prefixSize, summarizeRange,
} from '../../src/net/ip.js';

test('parseIP accepts what Go accepts and refuses the rest', () => {
  const ok: [string, string, string][] = [
    ['192.168.1.10', 'IPv4', '192.168.1.10'],
    ['0.0.0.0', 'IPv4', '0.0.0.0'],
    ['2001:DB8::1', 'IPv6', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', 'IPv6', '2001:db8::1:0:0:1'],
    ['::ffff:10.0.0.1', 'IPv4', '10.0.0.1'],
    ['::', 'IPv6', '::'],
  ];
  for (const [text, family, canonical] of ok) {
    const ip = parseIP(text);
    assert.ok(ip, text);
    assert.equal(ip.family, family, text);
    assert.equal(formatIP(ip), canonical, text);
  }
  for (const bad of ['', ' 10.0.0.1', '10.0.0.1 ', '10.0.0', '10.0.0.256', '010.0.0.1x', '0x7f.0.0.1', 'fe80::1%eth0', '1.2.3.4/32', 'gggg::1', '2001:db8:::1']) {
    assert.equal(parseIP(bad), undefined, JSON.stringify(bad));
  }
});

test('parsePrefix masks host bits like net.ParseCIDR and bounds the length', () => {
  assert.equal(formatPrefix(parsePrefix('10.1.2.3/24')!), '10.1.2.0/24');
  assert.equal(formatPrefix(parsePrefix('2001:db8::1/64')!), '2001:db8::/64');
  for (const bad of ['10.0.0.0/33', '10.0.0.0', '10.0.0.0/', '10.0.0.0/-1', '::/129', ' 10.0.0.0/24', '10.0.0.0/24 ', '10.0.0.0/0x8']) {
    assert.equal(parsePrefix(bad), undefined, JSON.stringify(bad));
  }
});

test('a /64 costs nothing: size and bounds are arithmetic', () => {
  const p = parsePrefix('2001:db8:1::/64')!;
  assert.equal(prefixSize(p), 1n << 64n);
  assert.equal(formatIP({ family: 'IPv6', value: prefixLast(p) }), '2001:db8:1:0:ffff:ffff:ffff:ffff');
  assert.ok(prefixContains(p, parseIP('2001:db8:1::abcd')!));
  assert.ok(!prefixContains(p, parseIP('2001:db8:2::1')!));
  assert.ok(!prefixContains(p, parseIP('10.0.0.1')!));
});

test('summarizeRange gives the minimal ascending prefix list', () => {
  const cases: [string, string, string[]][] = [
    ['192.168.0.150', '192.168.0.200', ['192.168.0.150/31', '192.168.0.152/29', '192.168.0.160/27', '192.168.0.192/29', '192.168.0.200/32']],
    ['10.0.0.0', '10.0.0.255', ['10.0.0.0/24']],
    ['10.0.0.7', '10.0.0.7', ['10.0.0.7/32']],
    ['0.0.0.0', '255.255.255.255', ['0.0.0.0/0']],
    ['2001:db8::', '2001:db8::ffff:ffff:ffff:ffff', ['2001:db8::/64']],
    ['2001:db8::1', '2001:db8::2', ['2001:db8::1/128', '2001:db8::2/128']],
  ];
  for (const [a, b, want] of cases) {
    assert.deepEqual(summarizeRange(parseIP(a)!, parseIP(b)!).map(formatPrefix), want, `${a}-${b}`);
  }
  assert.deepEqual(summarizeRange(parseIP('10.0.0.2')!, parseIP('10.0.0.1')!), []);
  assert.deepEqual(summarizeRange(parseIP('10.0.0.1')!, parseIP('::1')!), []);
});

test('overlap is containment either way, never across families', () => {
  const p = (s: string) => parsePrefix(s)!;
  assert.ok(prefixesOverlap(p('10.0.0.0/8'), p('10.1.0.0/16')));
  assert.ok(prefixesOverlap(p('10.1.0.0/16'), p('10.0.0.0/8')));
  assert.ok(prefixesOverlap(p('10.0.0.0/24'), p('10.0.0.0/24')));
  assert.ok(!prefixesOverlap(p('10.0.0.0/24'), p('10.0.1.0/24')));
  assert.ok(!prefixesOverlap(p('0.0.0.0/0'), p('::/0')));
});

test('avoidBuggyIPs marks every IPv4 .0 and .255, never IPv6', () => {
  assert.ok(isBuggyIP(parseIP('10.0.1.0')!));
  assert.ok(isBuggyIP(parseIP('10.0.1.255')!));
  assert.ok(!isBuggyIP(parseIP('10.0.1.1')!));
  assert.ok(!isBuggyIP(parseIP('2001:db8::ff')!));
  assert.ok(!isBuggyIP(parseIP('2001:db8::')!));
});
