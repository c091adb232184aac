// End to end in the lab (root), beside lab-l2.test.ts (curl, arping/ndisc6, link cut, Local): the speakers' gossip
// and a speaker's death. With METALLB_ML_DELEGATE_VERSION=2,5,5 set on the DaemonSet (for serf only: see the first
// test), a `serf` agent on the client
// machine, keyed from the `memberlist` Secret as MetalLB derives the key, joins the speakers' memberlist: it sees
// every speaker alive and the speakers log it joining; garbage UDP/TCP and a serf agent without the key do them no
// harm. The speaker of the node announcing a dual-stack Service hangs (SIGSTOP, no goodbye): serf sees that member
// fail, the next node in MetalLB's hash order takes over with gratuitous ARP and an unsolicited NA (tcpdump on the
// client, from its MAC), the client's requests keep being answered; resumed, exactly one node answers again. Killed
// (SIGKILL), the kubelet restarts it and it announces again at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { labSkip, startLab, type Lab } from '../helpers/lab.js';
import { l2Probes } from '../helpers/lab-l2.js';
import { electionOrder } from '../../src/speaker/l2/election.js';
import { metallbKey } from '../../src/speaker/memberlist/security.js';

const hasTools = ['serf', 'arping', 'tcpdump', 'ndisc6'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
const skip = labSkip ?? (hasTools ? false : 'serf, arping or tcpdump is not installed');

const SVC = 'tsp-tk';
const SERF = 'tsp-serf';
const SERF_RPC = '127.0.0.1:7373';
const SERF_RPC_NOKEY = '127.0.0.1:7374';

let lab: Lab;
let v4 = '';
let v6 = '';
const procs: ChildProcess[] = [];
/** The keyed serf agent of the first test, when it ran. */
let serf: { proc: ChildProcess; out: () => string } | undefined;

type Pod = { metadata: { name: string }; spec?: { nodeName?: string; containers?: { env?: { name: string; value?: string }[] }[] }; status?: { containerStatuses?: { restartCount?: number; ready?: boolean }[] } };

const { node: machine, owner: ownerOf, arpAnswers, ndpAnswers } = l2Probes(() => lab);
const owner = (): Promise<string> => ownerOf(SVC);

/** A long-running command in a lab namespace, its output collected; killed (by pid) after the file. */
function background(netns: string, cmd: string[]): { proc: ChildProcess; out: () => string } {
  const proc = spawn('ip', ['netns', 'exec', netns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d));
  procs.push(proc);
  return { proc, out: () => text };
}

async function stop(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

async function speakers(): Promise<Pod[]> {
  return (await lab.getJson<{ items: Pod[] }>(['get', 'pods', '-n', 'metallb-system', '-l', 'component=speaker'])).items;
}

/** `serf members` through an agent's RPC address: name → status. */
async function serfMembers(rpc = SERF_RPC): Promise<Map<string, string>> {
  const r = await lab.exec('client', ['serf', 'members', '-rpc-addr', rpc]);
  if (r.code !== 0) throw new Error(`serf members: ${r.stderr.trim()}`);
  return new Map(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)).map((f) => [f[0]!, f[2]!]));
}

/** The pid of the `metallb speaker` process running in a lab node's network namespace. */
function speakerPid(netns: string): number {
  // /proc/PID/ns/net reads `net:[inode]`; the namespace's bind mount in /run/netns has that inode.
  const want = `net:[${statSync(`/run/netns/${netns}`).ino}]`;
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!argv.includes('speaker') || !argv.some((a) => a.endsWith('metallb.js'))) continue;
      if (readlinkSync(`/proc/${d}/ns/net`) === want) found.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  assert.equal(found.length, 1, `one speaker process in ${netns}: ${found.join(', ')}`);
  return found[0]!;
}

/** Sends datagrams and a TCP stream of random bytes (1 to 650 bytes each) from the client to ip:port. */
const GARBAGE = `const [ip, port] = process.argv.slice(1); const { randomBytes } = require('crypto');
const u = require('dgram').createSocket(ip.includes(':') ? 'udp6' : 'udp4');
let n = 0; const next = () => { if (++n > 50) { u.close(); return; } u.send(randomBytes(n * 13), +port, ip, next); }; next();
const t = require('net').connect(+port, ip, () => { for (let i = 1; i <= 50; i++) t.write(randomBytes(i * 13)); t.end(); });
t.on('error', () => {}); t.setTimeout(3000, () => t.destroy());`;

before(async () => {
  if (skip) return;
  lab = await startLab(undefined, { nodes: 3 });
  await lab.kubectlOk(['create', 'deployment', SVC, '--image=sysnet4admin/echo-hname', '--replicas=3']);
  await lab.kubectlOk(['apply', '-f', '-'], {
    input: `apiVersion: v1
kind: Service
metadata: {name: ${SVC}}
spec: {type: LoadBalancer, ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6], selector: {app: ${SVC}}, ports: [{port: 80}]}
`,
  });
  await lab.waitFor(`${SVC} gets two addresses`, async () => {
    const ips = ((await lab.getJson<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>(['get', 'service', SVC])).status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
    v4 = ips.find((i) => !i.includes(':')) ?? '';
    v6 = ips.find((i) => i.includes(':')) ?? '';
    return (v4 !== '' && v6 !== '') || ips.join(',');
  });
});

after(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
  await lab?.down();
});

test('lab: a serf agent keyed from the memberlist Secret joins the speakers; garbage and keyless gossip do no harm', { skip }, async () => {
  const secret = await lab.getJson<{ data?: { secretkey?: string } }>(['get', 'secret', 'memberlist', '-n', 'metallb-system']);
  assert.ok(secret.data?.secretkey, 'the memberlist Secret has a secretkey');
  const key = metallbKey(Buffer.from(secret.data.secretkey, 'base64')).toString('base64');
  const client = lab.status.client;
  const nodes = lab.status.nodes.map((n) => n.name).sort();
  // Why the override, and only here: memberlist checks on every push/pull (join and anti-entropy) that each alive
  // member's current delegate version lies within every member's [min, max] (state.go verifyProtocol). MetalLB's
  // speakers run memberlist without a Delegate, so they advertise (0,0,0), and so do ours by default; serf advertises
  // its own protocol range (2,5,5). One member of each and the range is empty: serf refuses the join ("delegate
  // protocol version (5) is incompatible: [2, 0]"), and a MetalLB speaker would refuse a member advertising serf's the
  // same way (delegate-version.test.ts shows both). So the default stays MetalLB's, and serf is let in by telling our
  // speakers to advertise serf's versions, which a cluster with real MetalLB speakers must not do.
  await lab.kubectlOk(['set', 'env', 'daemonset/speaker', '-n', 'metallb-system', 'METALLB_ML_DELEGATE_VERSION=2,5,5']);
  await lab.waitFor("every speaker restarted with serf's delegate versions and ready", async () => {
    const pods = await speakers();
    const done = pods.filter((p) => p.status?.containerStatuses?.[0]?.ready === true
      && p.spec?.containers?.[0]?.env?.some((e) => e.name === 'METALLB_ML_DELEGATE_VERSION' && e.value === '2,5,5'));
    return (pods.length === nodes.length && done.length === nodes.length) || `${done.length} of ${pods.length}`;
  }, 300_000, 1000);
  serf = background(client.netns, ['serf', 'agent', '-node', SERF, '-bind', `${client.ipv4}:7946`, '-rpc-addr', SERF_RPC, '-encrypt', key, '-profile', 'lan', '-log-level', 'info']);
  const agent = serf;
  await lab.waitFor('serf agent up', async () => (await lab.exec('client', ['serf', 'members', '-rpc-addr', SERF_RPC])).code === 0 || agent.out().slice(-300), 30_000);
  await lab.waitFor('serf joined', async () => {
    const r = await lab.exec('client', ['serf', 'join', '-rpc-addr', SERF_RPC, `${machine(nodes[0]!).ipv4}:7946`]);
    return r.code === 0 || (r.stdout + r.stderr).trim();
  }, 60_000, 1000);
  await lab.waitFor('serf sees every speaker alive', async () => {
    const m = await serfMembers();
    return nodes.every((n) => m.get(n) === 'alive') || JSON.stringify([...m]);
  }, 60_000);
  // The speakers log it among the live members (the speaker logs the member set after membership events; close
  // events are coalesced, so the set is what to look for, not one line per member).
  for (const pod of await speakers()) {
    await lab.waitFor(`${pod.metadata.name} logs ${SERF} among the members`, async () =>
      new RegExp(`"members":\\[[^\\]]*"${SERF}"`).test(await lab.kubectlOk(['logs', '-n', 'metallb-system', pod.metadata.name])), 60_000, 1000);
  }

  // Garbage on the gossip ports (UDP and TCP) and a serf agent that does not have the key.
  const restarts = (await speakers()).map((p) => p.status?.containerStatuses?.[0]?.restartCount ?? 0);
  for (const n of nodes) {
    const r = await lab.exec('client', [process.execPath, '-e', GARBAGE, machine(n).ipv4, '7946']);
    assert.equal(r.code, 0, r.stderr);
  }
  const keyless = background(client.netns, ['serf', 'agent', '-node', `${SERF}-nokey`, '-bind', `${client.ipv4}:7947`, '-rpc-addr', SERF_RPC_NOKEY, '-profile', 'lan']);
  try {
    await lab.waitFor('keyless serf agent up', async () => (await lab.exec('client', ['serf', 'members', '-rpc-addr', SERF_RPC_NOKEY])).code === 0, 30_000);
    const r = await lab.exec('client', ['serf', 'join', '-rpc-addr', SERF_RPC_NOKEY, `${machine(nodes[0]!).ipv4}:7946`]);
    assert.notEqual(r.code, 0, `a join without the key must fail: ${r.stdout}`);
    const m = await serfMembers(SERF_RPC_NOKEY);
    assert.deepEqual([...m.keys()], [`${SERF}-nokey`], 'the keyless agent learns no speaker');
  } finally {
    await stop(keyless.proc);
  }
  // Nothing restarted, nobody left, and the Service is still answered by exactly one node.
  await new Promise((r) => setTimeout(r, 2000));
  assert.deepEqual((await speakers()).map((p) => p.status?.containerStatuses?.[0]?.restartCount ?? 0), restarts);
  const m = await serfMembers();
  assert.ok(nodes.every((n) => m.get(n) === 'alive'), JSON.stringify([...m]));
  assert.equal(m.has(`${SERF}-nokey`), false);
  const o = await owner();
  await lab.waitFor(`ARP answered by ${o} only`, async () => JSON.stringify(await arpAnswers(v4)) === JSON.stringify([machine(o).mac]), 30_000, 300);
});

const esc = (s: string): string => s.replace(/[.]/g, '\\.');

/** Gratuitous ARP for ip from mac in a tcpdump -e -v text: a request and a reply, both to broadcast. */
function gratuitousArp(text: string, ip: string, mac: string): boolean {
  const lines = text.split('\n').filter((l) => l.includes(`${mac} > ff:ff:ff:ff:ff:ff`));
  return lines.some((l) => new RegExp(`Reply ${esc(ip)} is-at ${mac}`).test(l)) && lines.some((l) => new RegExp(`Request who-has ${esc(ip)} \\(ff:ff:ff:ff:ff:ff\\) tell ${esc(ip)}`).test(l));
}

/** An unsolicited NA for ip from mac (to all-nodes, override set; -v prints the target on the same line). */
function unsolicitedNa(text: string, ip: string, mac: string): boolean {
  return text.split('\n').some((l) => l.includes(`${mac} > 33:33:00:00:00:01`) && l.includes(`tgt is ${ip}`) && /neighbor advertisement/.test(l));
}

async function podOf(node: string): Promise<Pod> {
  const p = (await speakers()).find((x) => x.spec?.nodeName === node);
  assert.ok(p, `a speaker pod on ${node}`);
  return p;
}

async function capture(): Promise<{ proc: ChildProcess; out: () => string }> {
  const dump = background(lab.status.client.netns, ['tcpdump', '-i', 'eth0', '-n', '-e', '-l', '-v', 'arp or (icmp6 and ip6[40] == 136)']);
  await lab.waitFor('tcpdump listening', async () => dump.out().includes('listening on'), 30_000, 100);
  return dump;
}

test('lab: the owner\'s speaker hangs (SIGSTOP, no goodbye): serf sees it fail, the next node takes over with gratuitous ARP and unsolicited NA, traffic continues; resumed, exactly one node answers', { skip }, async () => {
  const first = await owner();
  const names = lab.status.nodes.map((n) => n.name);
  // A dual-stack Service is elected on its first address; both addresses move together.
  assert.equal(first, electionOrder(names, v4)[0]);
  const next = electionOrder(names.filter((n) => n !== first), v4)[0]!;
  const nextMac = machine(next).mac;
  await lab.waitFor(`ARP answered by ${first} only`, async () => JSON.stringify(await arpAnswers(v4)) === JSON.stringify([machine(first).mac]), 60_000, 300);

  const dump = await capture();
  const pid = speakerPid(machine(first).netns);
  process.kill(pid, 'SIGSTOP');
  try {
    await lab.waitFor(`gratuitous ARP for ${v4} from ${next}`, async () => gratuitousArp(dump.out(), v4, nextMac), 60_000, 200);
    await lab.waitFor(`unsolicited NA for ${v6} from ${next}`, async () => unsolicitedNa(dump.out(), v6, nextMac), 30_000, 200);
    await lab.waitFor(`ARP answered by ${next} only`, async () => JSON.stringify(await arpAnswers(v4)) === JSON.stringify([nextMac]), 30_000, 300);
    await lab.waitFor(`NDP answered by ${next} only`, async () => JSON.stringify(await ndpAnswers(v6)) === JSON.stringify([nextMac]), 30_000, 300);
    for (const url of [`http://${v4}/`, `http://[${v6}]/`]) {
      await lab.waitFor(`${url} answered`, async () => (await lab.curl('client', url, 2)).startsWith(`${SVC}-`), 60_000, 200);
    }
    // serf (memberlist's LAN timing) learns of it from its own probes or from the speakers' gossip.
    const agent = serf;
    assert.ok(agent, 'no serf agent: the previous test must have joined one to the speakers');
    await lab.waitFor(`serf sees ${first} fail`, async () => agent.out().includes(`EventMemberFailed: ${first} `) || agent.out().slice(-400), 60_000, 300);
  } finally {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* restarted by its liveness probe meanwhile */
    }
    await stop(dump.proc, 'SIGINT');
  }
  // Resumed (or restarted by its liveness probe), it rejoins and sorts first again: one node answers, its own.
  await lab.waitFor(`ARP answered by ${first} only again`, async () => JSON.stringify(await arpAnswers(v4)) === JSON.stringify([machine(first).mac]), 120_000, 500);
  await lab.waitFor(`NDP answered by ${first} only again`, async () => JSON.stringify(await ndpAnswers(v6)) === JSON.stringify([machine(first).mac]), 60_000, 500);
  assert.equal(await owner(), first);
  const agent = serf;
  assert.ok(agent, 'no serf agent: the previous test must have joined one to the speakers');
  await lab.waitFor(`serf sees ${first} alive again`, async () => (await serfMembers()).get(first) === 'alive', 60_000);
});

test('lab: the owner\'s speaker killed (SIGKILL): restarted by the kubelet, it announces again (gratuitous ARP from its MAC), alone', { skip }, async () => {
  const first = await owner();
  const mac = machine(first).mac;
  const restartsBefore = (await podOf(first)).status?.containerStatuses?.[0]?.restartCount ?? 0;
  const dump = await capture();
  try {
    process.kill(speakerPid(machine(first).netns), 'SIGKILL');
    await lab.waitFor(`${first}'s speaker restarted and ready`, async () => {
      const cs = (await podOf(first)).status?.containerStatuses?.[0];
      return ((cs?.restartCount ?? 0) > restartsBefore && cs?.ready === true) || JSON.stringify(cs);
    }, 120_000, 1000);
    // Whether or not the others noticed the short death, the restarted speaker owns the address and says so.
    await lab.waitFor(`gratuitous ARP for ${v4} from ${first}`, async () => gratuitousArp(dump.out(), v4, mac), 60_000, 200);
    await lab.waitFor(`unsolicited NA for ${v6} from ${first}`, async () => unsolicitedNa(dump.out(), v6, mac), 30_000, 200);
  } finally {
    await stop(dump.proc, 'SIGINT');
  }
  await lab.waitFor(`ARP answered by ${first} only`, async () => JSON.stringify(await arpAnswers(v4)) === JSON.stringify([mac]), 60_000, 500);
  assert.equal(await owner(), first);
  await lab.waitFor(`http://${v4}/ answered`, async () => (await lab.curl('client', `http://${v4}/`, 2)).startsWith(`${SVC}-`), 60_000, 200);
  const restarts = (await podOf(first)).status?.containerStatuses?.[0]?.restartCount ?? 0;
  const previous = restarts > restartsBefore + 1 ? await lab.kubectl(['logs', '--previous', '-n', 'metallb-system', (await podOf(first)).metadata.name]) : undefined;
  assert.equal(restarts, restartsBefore + 1, `one restart for one kill; the previous run's log:\n${previous?.stdout.slice(-3000) ?? ''}`);
});
