// The fast paths of parseIP/formatIP must agree with the library-based reference (Go semantics) on every input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIP, formatIPWithLibrary, parseIP, parseIPWithLibrary } from '../../src/net/ip.js';
import { seededRandom } from '../helpers/random.js';

const show = (x: unknown): string => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));

test('parseIP/formatIP fast paths agree with the ipaddr.js reference', () => {
  const rnd = seededRandom(7);
  const samples = ['::', '::1', '1::', 'fd00::', '2001:db8::1:0:0:1', '2001:0:0:1:0:0:0:1', '1:2:3:4:5:6:7:8', '0:0:0:0:0:0:0:0',
    '::ffff:1.2.3.4', '::ffff:102:304', '1.2.3.4', '01.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', ' 1.2.3.4', 'fe80::1%eth0',
    'FD00::A', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', ':1:2', '1:2::3::4', '12345::', 'g::', '::1.2.3.4',
    '1.2.3.04', '0.0.0.0', '255.255.255.255', '', '1:0:0:2:0:0:0:3', '0:0:1::', '1:2:3:4:5:6::', '00000::1', '-1.2.3.4'];
  for (let i = 0; i < 5000; i++) {
    const g = Array.from({ length: 8 }, () => (rnd() < 0.45 ? 0 : Math.floor(rnd() * 65536)).toString(16));
    samples.push(g.join(':'));
    samples.push(`${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`);
  }
  for (const s of samples) {
    const ref = parseIPWithLibrary(s);
    assert.equal(show(parseIP(s)), show(ref), `parse ${JSON.stringify(s)}`);
    if (ref) {
      assert.equal(formatIP(ref), formatIPWithLibrary(ref), `format ${s}`);
      const canonical = parseIP(formatIP(ref));
      assert.equal(show(canonical), show(ref), `round trip ${s}`);
    }
  }
});
