// SpeakerList (MetalLB's speakerlist) with a scripted memberlist: peers from the speaker pods, the first join before
// start() resolves, change notifications, rejoin while a peer is missing, known peers when the API is unreachable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { SpeakerList, peerAddresses, type MemberlistLike } from '../../src/speaker/membership.js';
import type { Pod } from '../../src/k8s/types.js';
import { createLogger } from '../../src/log.js';
import { waitFor } from '../controller/helpers.js';

const log = createLogger('test', 'none');
const pod = (name: string, ip: string, over: Partial<Pod['status']> & { deleting?: boolean } = {}): Pod => ({
  metadata: { name, ...(over.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
  status: { phase: over.phase ?? 'Running', podIP: ip, podIPs: [{ ip }] },
});

class FakeML extends EventEmitter implements MemberlistLike {
  alive = new Set<string>();
  joins: string[][] = [];
  left = false;
  reachable = new Map<string, string>(); // addr -> member name
  async join(addrs: readonly string[]): Promise<number> {
    this.joins.push([...addrs]);
    let n = 0;
    for (const a of addrs) {
      const m = this.reachable.get(a);
      if (m && !this.alive.has(m)) {
        this.alive.add(m);
        this.emit('join', { name: m });
      }
      if (m) n++;
    }
    return n;
  }
  async liveMembers(): Promise<string[]> {
    return [...this.alive];
  }
  async leave(): Promise<void> {
    this.left = true;
  }
  async shutdown(): Promise<void> {}
}

test('peerAddresses: pod IPs with the port, terminating and finished pods skipped, IPv6 bracketed', () => {
  assert.deepEqual(peerAddresses([
    pod('a', '10.97.1.1'), pod('b', 'fd00:97::2'), pod('c', '10.97.1.3', { phase: 'Failed' }), pod('d', '10.97.1.4', { deleting: true }),
    { metadata: { name: 'e' }, status: { phase: 'Pending' } },
  ], 7946), ['10.97.1.1:7946', '[fd00:97::2]:7946']);
});

test('SpeakerList: joins the pods first, reports changes, rejoins a missing peer with the known addresses', async () => {
  const ml = new FakeML();
  ml.alive.add('node1');
  ml.reachable.set('10.97.1.1:7946', 'node1').set('10.97.1.2:7946', 'node2');
  let pods: Pod[] | Error = [pod('s1', '10.97.1.1'), pod('s2', '10.97.1.2'), pod('s3', '10.97.1.3')];
  const sl = new SpeakerList({
    nodeName: 'node1', log, peerPort: 7946, retryMs: 50,
    create: async () => ml,
    listPods: async () => {
      if (pods instanceof Error) throw pods;
      return pods;
    },
  });
  const changes: string[] = [];
  sl.onChange((e, m) => changes.push(`${e} ${m}`));
  await sl.start();
  // Joined before start() resolved: node2 is known.
  assert.deepEqual([...sl.usable()].sort(), ['node1', 'node2']);
  assert.deepEqual(ml.joins[0], ['10.97.1.1:7946', '10.97.1.2:7946', '10.97.1.3:7946']);
  // node2 dies; the API server becomes unreachable; node3 comes up: found through the known addresses.
  ml.alive.delete('node2');
  ml.emit('leave', { name: 'node2' });
  await waitFor('node2 gone', () => !sl.usable().has('node2') || undefined, 5000, 10);
  pods = new Error('connect ENETUNREACH');
  ml.reachable.set('10.97.1.3:7946', 'node3');
  await waitFor('node3 joined again without the API', () => sl.usable().has('node3') || undefined, 5000, 10);
  assert.ok(changes.includes('leave node2'));
  assert.ok(changes.some((c) => c.endsWith('node3')));
  await sl.leave(100);
  assert.equal(ml.left, true);
  await sl.stop();
});
