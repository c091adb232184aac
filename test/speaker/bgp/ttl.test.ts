// The TTL of BGP sessions: single-hop eBGP 1, eBGP multihop and iBGP 255 (sessionTtl, pure), and that the
// connection really leaves with it, the SYN included (through the native addon; counted by nftables by TTL in a
// namespace of its own, over IPv4 and IPv6).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { MULTI_HOP_TTL, SINGLE_HOP_TTL, sessionTtl } from '../../../src/speaker/bgp/session.js';
import { nativeAvailable } from '../../../src/net/native.js';
import { isRoot, Netns } from '../../helpers/netns.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('sessionTtl', () => {
  it('eBGP is single hop unless ebgpMultiHop; iBGP (peerASN, localASN or dynamicASN internal) crosses routers', () => {
    assert.equal(SINGLE_HOP_TTL, 1);
    assert.equal(MULTI_HOP_TTL, 255);
    assert.equal(sessionTtl({ myASN: 64512, peerASN: 64500 }), 1);
    assert.equal(sessionTtl({ myASN: 64512, peerASN: 64500, ebgpMultiHop: false }), 1);
    assert.equal(sessionTtl({ myASN: 64512, peerASN: 64500, ebgpMultiHop: true }), 255);
    assert.equal(sessionTtl({ myASN: 64512, peerASN: 64512 }), 255);
    // localASN is the AS we speak as: equal to the peer's, the session is iBGP.
    assert.equal(sessionTtl({ myASN: 64512, localASN: 64500, peerASN: 64500 }), 255);
    assert.equal(sessionTtl({ myASN: 64512, localASN: 64501, peerASN: 64512 }), 1);
    assert.equal(sessionTtl({ myASN: 64512, dynamicASN: 'internal' }), 255);
    assert.equal(sessionTtl({ myASN: 64512, dynamicASN: 'external' }), 1);
    assert.equal(sessionTtl({ myASN: 64512, dynamicASN: 'external', ebgpMultiHop: true }), 255);
  });
});

describe('connections leave with the TTL asked for', { skip: isRoot() && nativeAvailable() ? false : 'needs root and the native addon' }, () => {
  it('IPv4 and IPv6, every segment (the SYN too); without a TTL, the system default (64)', async () => {
    const net = new Netns('tmh-');
    try {
      const ns = net.addNamespace('t');
      const port = 17900;
      const rules: string[] = [];
      for (const [family, field] of [['ip', 'ip ttl'], ['ip6', 'ip6 hoplimit']] as const) {
        net.exec(ns, 'nft', ['add', 'table', family, 'tmh']);
        net.exec(ns, 'nft', ['add', 'chain', family, 'tmh', 'out', '{ type filter hook output priority 0; }']);
        for (const ttl of [1, 64, 255]) {
          for (const flags of ['syn', 'any']) {
            const match = flags === 'syn' ? ['tcp', 'flags', '&', '(syn|ack)', '==', 'syn'] : [];
            net.exec(ns, 'nft', ['add', 'rule', family, 'tmh', 'out', 'tcp', 'dport', String(port), ...match, ...field.split(' '), String(ttl), 'counter', 'comment', `"${flags}_${ttl}"`]);
          }
        }
        rules.push(family);
      }
      const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(ROOT, 'test', 'speaker', 'bgp', 'helpers', 'ttl-probe.ts'),
        '127.0.0.1/1', '::1/255', '127.0.0.1/-'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PROBE_PORT: String(port) } });
      const results = out.trim().split('\n').map((l) => JSON.parse(l) as { address: string; ok: boolean; err?: string });
      assert.deepEqual(results.map((r) => [r.address, r.ok, r.err]), [['127.0.0.1', true, undefined], ['::1', true, undefined], ['127.0.0.1', true, undefined]]);
      const counters = (family: string): Record<string, number> => {
        const text = net.exec(ns, 'nft', ['list', 'chain', family, 'tmh', 'out']);
        return Object.fromEntries([...text.matchAll(/counter packets (\d+) bytes \d+ comment "(\w+)"/g)].map((m) => [m[2]!, Number(m[1])]));
      };
      const v4 = counters('ip');
      const v6 = counters('ip6');
      assert.equal(v4['syn_1'], 1, 'one SYN with TTL 1');
      assert.ok(v4['any_1']! >= 3, 'and the rest of that connection (SYN, ACK, data, FIN) too');
      assert.equal(v4['syn_64'], 1, 'the connection without a TTL: the default');
      assert.equal(v4['syn_255'], 0);
      assert.equal(v6['syn_255'], 1, 'one IPv6 SYN with hop limit 255');
      assert.ok(v6['any_255']! >= 3);
      assert.equal(v6['syn_1'], 0);
      assert.equal(v6['syn_64'], 0);
    } finally {
      await net.cleanup();
    }
  });
});
