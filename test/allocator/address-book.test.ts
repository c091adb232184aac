// The AddressBook's indexed searches (used-address runs, sharing groups with per-port hints) against brute force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressBook } from '../../src/allocator/sharing.js';
import { isBuggyIP, type IP } from '../../src/net/ip.js';
import { seededRandom } from '../helpers/random.js';


test('firstUntouched / firstShareable agree with a brute-force scan', () => {
  const rnd = seededRandom(42);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const KEYS = ['', 'k1', 'k2'];
  const BACKENDS = ['', 'app=x'];
  const PORTS = ['TCP/80', 'TCP/443', 'UDP/53', 'TCP/53'];
  for (let round = 0; round < 40; round++) {
    const book = new AddressBook();
    // svc -> [addr, ports, sharing, backend]
    const held = new Map<string, { v: bigint; ports: string[]; sharing: string; backend: string }>();
    let n = 0;
    for (let step = 0; step < 400; step++) {
      const op = rnd();
      if (op < 0.55 || held.size === 0) {
        const v = BigInt(Math.floor(rnd() * 64));
        const ip: IP = { family: 'IPv4', value: v };
        const id = { sharing: pick(KEYS), backend: pick(BACKENDS) };
        const ports = PORTS.filter(() => rnd() < 0.4);
        const name = `s${n++}`;
        if (book.check(name, ip, ports, id) === undefined) {
          book.addUser(ip, name, ports, id, 'p');
          held.set(name, { v, ports, ...id });
        }
      } else {
        const name = pick([...held.keys()]);
        book.removeUser({ family: 'IPv4', value: held.get(name)!.v }, name);
        held.delete(name);
      }
      // Queries.
      for (let q = 0; q < 3; q++) {
        const lo = BigInt(Math.floor(rnd() * 64));
        const hi = lo + BigInt(Math.floor(rnd() * 64));
        const avoid = rnd() < 0.3;
        const id = { sharing: pick(KEYS), backend: pick(BACKENDS) };
        const ports = PORTS.filter(() => rnd() < 0.35);
        const used = new Set([...held.values()].map((h) => h.v));
        let untouched: bigint | undefined;
        for (let v = lo; v <= hi; v++) {
          if (used.has(v) || (avoid && isBuggyIP({ family: 'IPv4', value: v }))) continue;
          untouched = v;
          break;
        }
        assert.equal(book.firstUntouched('IPv4', lo, hi, avoid), untouched, `untouched [${lo},${hi}]`);
        let shareable: bigint | undefined;
        if (id.sharing !== '') {
          for (let v = lo; v <= hi && shareable === undefined; v++) {
            if (!used.has(v) || (avoid && isBuggyIP({ family: 'IPv4', value: v }))) continue;
            // The oracle's own record of who holds v (all users of one address share one identity).
            const users = [...held.values()].filter((h) => h.v === v);
            if (users[0]!.sharing !== id.sharing || users[0]!.backend !== id.backend) continue;
            if (users.some((u) => u.ports.some((p) => ports.includes(p)))) continue;
            shareable = v;
          }
        }
        assert.equal(book.firstShareable('IPv4', lo, hi, avoid, 'query', ports, id), shareable, `round ${round} step ${step}: shareable [${lo},${hi}] ${JSON.stringify(id)} ${ports}`);
      }
    }
  }
});
