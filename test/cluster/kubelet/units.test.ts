// The kubelet's pure pieces: image table and command resolution, $(VAR) expansion and the environment, IPAM,
// mount planning, pod phase and conditions, CRI log records, quantities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { matchImage, parseImageRef, resolveLaunch } from '../../../src/cluster/kubelet/images.js';
import { buildEnv, ContainerConfigError, expand, serviceEnv, type EnvSources } from '../../../src/cluster/kubelet/env.js';
import { parsePodCIDRs, PodIPAM } from '../../../src/cluster/kubelet/ipam.js';
import { planMounts, setupScript, type HostView } from '../../../src/cluster/kubelet/mounts.js';
import { computePodStatus, podPhase } from '../../../src/cluster/kubelet/status.js';
import { parseCriLog, rfc3339Nano, parseTimestampNs } from '../../../src/cluster/kubelet/logs.js';
import { parseQuantity } from '../../../src/cluster/kubelet/quantity.js';
import { sandboxId } from '../../../src/cluster/kubelet/netns.js';
import { parseTaints } from '../../../src/cluster/kubelet/node.js';
import { cpuShares, detectCgroups, labCgroupOfSelf, sharesToWeight } from '../../../src/cluster/kubelet/cgroups.js';
import type { ContainerStatus, Pod } from '../../../src/cluster/kubelet/types.js';

test('image references match whatever the registry and tag', () => {
  for (const [ref, id] of [
    ['nginx', 'nginx'],
    ['nginx:1.27-alpine', 'nginx'],
    ['docker.io/library/nginx@sha256:abc', 'nginx'],
    ['sysnet4admin/echo-hname', 'echo-hname'],
    ['docker.io/sysnet4admin/echo-ip:latest', 'echo-ip'],
    ['quay.io/metallb/controller:v0.14.9', 'metallb-controller'],
    ['metallb/speaker:main', 'metallb-speaker'],
    ['ghcr.io/example/metallb-ts:0.1.0', 'metallb-ts'],
    ['localhost:5000/metallb-ts', 'metallb-ts'],
  ] as const) {
    assert.equal(matchImage(ref)?.id, id, ref);
  }
  assert.equal(matchImage('busybox'), undefined);
  assert.equal(matchImage('quay.io/metallb/frr-k8s'), undefined);
  assert.equal(parseImageRef('nginx')?.canonical, 'docker.io/library/nginx:latest');
  assert.equal(parseImageRef('quay.io/metallb/speaker:v0.14.9')?.canonical, 'quay.io/metallb/speaker:v0.14.9');
  assert.equal(parseImageRef('bad image'), undefined);
});

test('command and args combine with the image entrypoint as a runtime does', () => {
  const nginx = matchImage('nginx')!;
  assert.deepEqual(resolveLaunch(nginx, undefined, undefined), { kind: 'builtin', program: 'nginx', args: ['nginx', '-g', 'daemon off;'] });
  assert.deepEqual(resolveLaunch(nginx, ['nginx', '-g', 'daemon off;'], undefined), { kind: 'builtin', program: 'nginx', args: ['-g', 'daemon off;'] });
  assert.deepEqual(resolveLaunch(nginx, ['sh', '-c', 'exit 1'], undefined), { kind: 'host', argv: ['sh', '-c', 'exit 1'] });
  assert.deepEqual(resolveLaunch(nginx, undefined, ['sleep', '1']), { kind: 'host', argv: ['sleep', '1'] });
  const speaker = matchImage('quay.io/metallb/speaker:v0.13.12')!;
  assert.deepEqual(resolveLaunch(speaker, undefined, ['--port=7472', '--log-level=info']), { kind: 'metallb', args: ['speaker', '--port=7472', '--log-level=info'] });
  assert.deepEqual(resolveLaunch(speaker, ['/speaker'], ['--port=7472']), { kind: 'metallb', args: ['speaker', '--port=7472'] });
  const controller = matchImage('metallb/controller')!;
  assert.deepEqual(resolveLaunch(controller, ['/controller'], undefined), { kind: 'metallb', args: ['controller'] });
  const ours = matchImage('metallb-ts:dev')!;
  assert.deepEqual(resolveLaunch(ours, undefined, ['controller', '--log-level', 'debug']), { kind: 'metallb', args: ['controller', '--log-level', 'debug'] });
  assert.deepEqual(resolveLaunch(ours, ['metallb'], ['speaker']), { kind: 'metallb', args: ['speaker'] });
  assert.deepEqual(resolveLaunch(ours, undefined, undefined), { kind: 'metallb', args: ['--help'] });
});

test('$(VAR) expansion follows Kubernetes: defined names replaced, undefined kept, $$ escapes', () => {
  const vars: Record<string, string> = { A: 'x', B: 'y' };
  const f = (s: string): string => expand(s, (n) => vars[n]);
  assert.equal(f('$(A)-$(B)'), 'x-y');
  assert.equal(f('$(C)'), '$(C)');
  assert.equal(f('$$(A)'), '$(A)');
  assert.equal(f('$$$(A)'), '$x');
  assert.equal(f('$A $(A'), '$A $(A');
  assert.equal(f('cost: 5$'), 'cost: 5$');
  assert.equal(f('$()'), '$()');
});

const pod = (extra: Partial<Pod['spec']> = {}, md: Partial<Pod['metadata']> = {}): Pod => ({
  metadata: { name: 'p', namespace: 'ns', uid: '0123abcd-0000-0000-0000-000000000000', labels: { app: 'a' }, ...md },
  spec: { containers: [{ name: 'c', image: 'nginx' }], nodeName: 'n1', ...extra },
  status: { podIP: '10.0.0.5', podIPs: [{ ip: '10.0.0.5' }, { ip: 'fd00::5' }], hostIP: '10.1.0.1', hostIPs: [{ ip: '10.1.0.1' }] },
});

const sources = (over: Partial<EnvSources> = {}): EnvSources => ({
  secret: () => undefined,
  configMap: () => undefined,
  services: () => [],
  nodeAllocatable: { cpu: 2, memory: 4 * 2 ** 30, 'ephemeral-storage': 10 * 2 ** 30 },
  ...over,
});

test('the environment: envFrom, env with expansion and the downward API, Service variables', () => {
  const p = pod();
  p.spec.containers[0] = {
    name: 'c',
    env: [
      { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
      { name: 'MSG', value: '$(FROM_CM)/$(IP)/$(WEB_SERVICE_HOST)' },
      { name: 'FROM_CM', value: 'overridden' },
      { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
      { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'requests.memory', divisor: '1Mi' } } },
    ],
    envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'X_' }, { configMapRef: { name: 'cm' } }],
    resources: { requests: { memory: '100Mi' } },
  };
  const svc = (ns: string, name: string, ip: string, ports: { name?: string; port: number; protocol?: string }[]) => ({ metadata: { namespace: ns, name }, spec: { clusterIP: ip, ports } });
  const built = buildEnv(p, p.spec.containers[0], sources({
    configMap: (_ns, name) => (name === 'cm' ? { metadata: { name }, data: { FROM_CM: 'cm', 'bad key': 'v' } } : undefined),
    services: () => [svc('default', 'kubernetes', '10.96.0.1', [{ name: 'https', port: 443 }]), svc('ns', 'web', 'fd00:96::10', [{ name: 'http', port: 80 }, { port: 53, protocol: 'UDP' }]), svc('other', 'x', '10.96.0.9', [{ port: 1 }])],
  }));
  const e = built.env;
  assert.equal(e.IP, '10.0.0.5,fd00::5');
  assert.equal(e.APP, 'a');
  assert.equal(e.MSG, 'cm/10.0.0.5,fd00::5/fd00:96::10');
  assert.equal(e.FROM_CM, 'overridden');
  assert.equal(e.X_FROM_CM, 'cm');
  assert.equal(e.CPU, '2');
  assert.equal(e.MEM, '100');
  assert.deepEqual(built.skippedKeys.sort(), ['X_bad key', 'bad key'].sort());
  assert.equal(e.KUBERNETES_SERVICE_HOST, '10.96.0.1');
  assert.equal(e.KUBERNETES_SERVICE_PORT, '443');
  assert.equal(e.KUBERNETES_PORT, 'tcp://10.96.0.1:443');
  assert.equal(e.KUBERNETES_PORT_443_TCP_ADDR, '10.96.0.1');
  assert.equal(e.WEB_SERVICE_PORT_HTTP, '80');
  assert.equal(e.WEB_PORT, 'tcp://[fd00:96::10]:80');
  assert.equal(e.WEB_PORT_53_UDP, 'udp://[fd00:96::10]:53');
  assert.equal(e.X_SERVICE_HOST, undefined, 'Services of other namespaces are not linked');
  // enableServiceLinks: false keeps only the kubernetes Service.
  const noLinks = serviceEnv(pod({ enableServiceLinks: false }), [svc('default', 'kubernetes', '10.96.0.1', [{ port: 443 }]), svc('ns', 'web', '10.96.0.2', [{ port: 80 }])] as never);
  assert.equal(noLinks.KUBERNETES_SERVICE_HOST, '10.96.0.1');
  assert.equal(noLinks.WEB_SERVICE_HOST, undefined);
});

test('missing Secrets and keys are CreateContainerConfigError unless optional', () => {
  const p = pod();
  const c = { name: 'c', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] };
  assert.throws(() => buildEnv(p, c, sources()), (e: unknown) => e instanceof ContainerConfigError && e.message === 'secret "s" not found');
  const withSecret = sources({ secret: () => ({ metadata: { name: 's' }, data: { other: 'eA==' } }) });
  assert.throws(() => buildEnv(p, c, withSecret), /couldn't find key k in Secret ns\/s/);
  const opt = { name: 'c', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 's', key: 'k', optional: true } } }] };
  assert.equal(buildEnv(p, opt, sources()).env.S, '');
});

test('IPAM hands out addresses round-robin, persists them, and never gives one to two pods', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tkl-ipam-'));
  try {
    const file = join(dir, 'ipam.json');
    const prefixes = parsePodCIDRs(['10.91.200.0/29', 'fd00:91:200::/64']);
    const a = new PodIPAM(prefixes, file);
    const p1 = a.allocate('u1');
    assert.deepEqual(p1.ips, ['10.91.200.2', 'fd00:91:200::2']);
    assert.deepEqual(a.allocate('u1').ips, p1.ips, 'idempotent');
    const p2 = a.allocate('u2');
    assert.deepEqual(p2.ips, ['10.91.200.3', 'fd00:91:200::3']);
    a.release('u1');
    // Round-robin: the freed .2 is not reused while later addresses are free.
    assert.deepEqual(a.allocate('u3').ips, ['10.91.200.4', 'fd00:91:200::4']);
    // A restart keeps the allocations.
    const b = new PodIPAM(prefixes, file);
    assert.deepEqual(b.addressesOf('u2'), p2.ips);
    assert.equal(b.claim('u9', p2.ips), false, 'an address held by another pod cannot be claimed');
    assert.deepEqual(b.allocate('u4').ips, ['10.91.200.5', 'fd00:91:200::5']);
    assert.deepEqual(b.allocate('u5').ips, ['10.91.200.6', 'fd00:91:200::6']);
    // .0, .1 and the broadcast address are never used: the /29 holds .2-.6 only.
    assert.deepEqual(b.allocate('u6').ips, ['10.91.200.2', 'fd00:91:200::7']);
    assert.throws(() => b.allocate('u7'), /no free address left in pod CIDR 10\.91\.200\.0\/29/);
    assert.ok(JSON.parse(readFileSync(file, 'utf8')).allocations.u6);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => parsePodCIDRs(['10.0.0.0/24', '10.1.0.0/24']), /more than one IPv4/);
  assert.throws(() => parsePodCIDRs(['10.0.0.0/33']), /not an IPv4 or IPv6 prefix/);
});

test('sandbox ids: 8 hex digits of the uid, another window when taken', () => {
  assert.equal(sandboxId('0123abcd-4567-89ef-0000-000000000000', () => false), '0123abcd');
  assert.equal(sandboxId('0123abcd-4567-89ef-0000-000000000000', (id) => id === '0123abcd'), '456789ef');
  assert.match(sandboxId('not-hex-at-all', () => false), /^[0-9a-f]{8}$/);
});

function fakeHost(tree: Record<string, 'dir' | 'file'>, links: Record<string, string> = {}): HostView {
  const resolve = (p: string): string => {
    for (const [from, to] of Object.entries(links)) if (p === from || p.startsWith(`${from}/`)) return to + p.slice(from.length);
    return p;
  };
  return {
    kind: (p) => tree[resolve(p)] ?? 'missing',
    realpath: (p) => resolve(p),
    entries: (d) =>
      Object.keys(tree)
        .filter((k) => k.startsWith(`${d === '/' ? '' : d}/`) && !k.slice(d.length + 1).includes('/') && k !== d)
        .map((k) => k.slice(d === '/' ? 1 : d.length + 1)),
  };
}

test('mount planning: existing targets bound directly, missing ones shadowed, new top-level directories recorded', () => {
  const host = fakeHost({ '/': 'dir', '/run': 'dir', '/run/lock': 'dir', '/run/netns': 'dir', '/etc': 'dir', '/etc/hosts': 'file', '/etc/passwd': 'file', '/tmp': 'dir' }, { '/var/run': '/run' });
  const plan = planMounts(
    [
      { source: '/v/sa', sourceKind: 'dir', target: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
      { source: '/v/hosts', sourceKind: 'file', target: '/etc/hosts', readOnly: false },
      { source: '/v/key', sourceKind: 'file', target: '/etc/ml_secret_key/key', readOnly: true },
      { source: '/v/data', sourceKind: 'dir', target: '/data', readOnly: false },
      { source: '/v/sub', sourceKind: 'dir', target: '/data/sub', readOnly: false },
      { source: '/v/tmp', sourceKind: 'dir', target: '/tmp', readOnly: false },
    ],
    host,
    '/state/shadow',
    '/data/wd',
  );
  assert.deepEqual(plan.hostDirs, ['/data']);
  const byHost = Object.fromEntries(plan.shadows.map((s) => [s.hostDir, s]));
  assert.deepEqual(Object.keys(byHost).sort(), ['/etc', '/run']);
  assert.deepEqual(byHost['/run']!.create, [{ rel: 'secrets/kubernetes.io/serviceaccount', kind: 'dir' }]);
  assert.deepEqual(byHost['/run']!.entries.sort(), ['lock', 'netns']);
  assert.deepEqual(byHost['/etc']!.create, [{ rel: 'ml_secret_key/key', kind: 'file' }]);
  const binds = Object.fromEntries(plan.binds.map((b) => [b.target, b]));
  assert.equal(binds['/data/sub']!.mkdir, 'dir', 'a mount point inside another volume is made inside the container');
  assert.equal(binds['/tmp']!.mkdir, undefined);
  assert.equal(plan.mkdirWorkingDir, true);
  const script = setupScript({ plan, hostname: "o'neil", cgroupProcs: ['/sys/fs/cgroup/cpu/x/cgroup.procs'], workingDir: '/data/wd' });
  assert.match(script, /printf %s 'o'\\''neil' > \/proc\/sys\/kernel\/hostname/);
  assert.match(script, /mount --rbind '\/run' '\/state\/shadow\/\d\/\.metallb-host'\nmount --rbind '\/state\/shadow\/\d' '\/run'/);
  // read-only remounts come after every bind, and the workload is exec'd last
  const lines = script.trim().split('\n');
  assert.equal(lines.at(-1), 'exec "$@"');
  // the kubelet hears on descriptor 3 that the namespaces are complete (after the last mount), which the workload
  // does not inherit
  const report = lines.indexOf('printf . >&3 || :');
  assert.ok(report > lines.map((l, i) => (l.startsWith('mount ') ? i : -1)).reduce((a, b) => Math.max(a, b)), script);
  assert.deepEqual(lines.slice(report - 1, -1), ["trap '' PIPE", 'printf . >&3 || :', 'trap - PIPE', 'exec 3>&-']);
  const lastBind = lines.map((l, i) => (l.startsWith('mount --bind') ? i : -1)).reduce((a, b) => Math.max(a, b));
  const firstRo = lines.findIndex((l) => l.startsWith('mount -o remount,bind,ro'));
  assert.ok(firstRo > lastBind);
  assert.throws(() => planMounts([{ source: '/v', sourceKind: 'dir', target: '/etc/hosts', readOnly: false }], host, '/s'), /mount point \/etc\/hosts is a file on the node/);
});

const cs = (name: string, state: ContainerStatus['state'], last: ContainerStatus['lastState'] = {}, ready = false): ContainerStatus => ({ name, state, lastState: last, ready, restartCount: 0, image: 'i', imageID: '' });

test('pod phase follows the kubelet for restart policies and init containers', () => {
  const running = cs('a', { running: { startedAt: 't' } });
  const ok = cs('a', { terminated: { exitCode: 0 } });
  const bad = cs('a', { terminated: { exitCode: 1 } });
  const creating = cs('a', { waiting: { reason: 'ContainerCreating' } });
  const backoff = cs('a', { waiting: { reason: 'CrashLoopBackOff' } }, { terminated: { exitCode: 1 } });
  assert.equal(podPhase(pod(), [], [running]), 'Running');
  assert.equal(podPhase(pod(), [], [creating]), 'Pending');
  assert.equal(podPhase(pod(), [], [backoff]), 'Running');
  assert.equal(podPhase(pod({ restartPolicy: 'Never' }), [], [ok]), 'Succeeded');
  assert.equal(podPhase(pod({ restartPolicy: 'Never' }), [], [bad]), 'Failed');
  assert.equal(podPhase(pod({ restartPolicy: 'OnFailure' }), [], [bad]), 'Running');
  assert.equal(podPhase(pod({ restartPolicy: 'OnFailure' }), [], [ok]), 'Succeeded');
  assert.equal(podPhase(pod(), [{ status: running, sidecar: false }], [creating]), 'Pending');
  assert.equal(podPhase(pod({ restartPolicy: 'Never' }), [{ status: bad, sidecar: false }], [creating]), 'Failed');
  assert.equal(podPhase(pod(), [{ status: ok, sidecar: false }], [running]), 'Running');
});

test('conditions: kubelet-owned ones computed, others kept, transition times kept while a condition holds', () => {
  const p = pod();
  p.status = { ...p.status, conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2020-01-01T00:00:00Z' }, { type: 'Ready', status: 'False', lastTransitionTime: '2020-01-01T00:00:01Z' }] };
  const st = computePodStatus({
    pod: p,
    initStatuses: [],
    statuses: [cs('c', { running: { startedAt: 't' } }, {}, false)],
    sandboxReady: true,
    hostIPs: ['10.1.0.1'],
    podIPs: ['10.0.0.5', 'fd00::5'],
    startTime: '2020-01-01T00:00:00Z',
    now: '2021-01-01T00:00:00Z',
  });
  const c = Object.fromEntries(st.conditions!.map((x) => [x.type, x]));
  assert.equal(c.PodScheduled?.lastTransitionTime, '2020-01-01T00:00:00Z');
  assert.equal(c.Ready?.status, 'False');
  assert.equal(c.Ready?.reason, 'ContainersNotReady');
  assert.equal(c.Ready?.message, 'containers with unready status: [c]');
  assert.equal(c.Ready?.lastTransitionTime, '2020-01-01T00:00:01Z');
  assert.equal(c.Initialized?.status, 'True');
  assert.equal(c.PodReadyToStartContainers?.status, 'True');
  assert.deepEqual(st.podIPs, [{ ip: '10.0.0.5' }, { ip: 'fd00::5' }]);
  assert.equal(st.qosClass, 'BestEffort');
});

test('CRI log records: timestamps, partial lines joined', () => {
  const ns = parseTimestampNs('2024-01-02T03:04:05.123456789Z')!;
  assert.equal(rfc3339Nano(ns), '2024-01-02T03:04:05.123456789Z');
  assert.equal(rfc3339Nano(parseTimestampNs('2024-01-02T03:04:05.1Z')!), '2024-01-02T03:04:05.1Z');
  assert.equal(rfc3339Nano(parseTimestampNs('2024-01-02T03:04:05Z')!), '2024-01-02T03:04:05Z');
  const text = ['2024-01-02T03:04:05Z stdout P hel', '2024-01-02T03:04:05Z stderr F err', '2024-01-02T03:04:06Z stdout F lo', '2024-01-02T03:04:07Z stdout F ', 'tail-without-newline'].join('\n');
  const { records, rest } = parseCriLog(text);
  assert.deepEqual(records.map((r) => [r.stream, r.text]), [['stderr', 'err'], ['stdout', 'hello'], ['stdout', '']]);
  assert.equal(rest, 'tail-without-newline');
});

test('quantities and taints', () => {
  assert.equal(parseQuantity('250m'), 0.25);
  assert.equal(parseQuantity('128Mi'), 128 * 2 ** 20);
  assert.equal(parseQuantity('1G'), 1e9);
  assert.equal(parseQuantity('1e3'), 1000);
  assert.equal(parseQuantity(2), 2);
  assert.throws(() => parseQuantity('12 apples'), /is not a quantity/);
  assert.deepEqual(parseTaints(['dedicated=lab:NoSchedule', 'node-role.kubernetes.io/control-plane:NoSchedule']), [
    { key: 'dedicated', value: 'lab', effect: 'NoSchedule' },
    { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
  ]);
  assert.throws(() => parseTaints(['x=y:Sometimes']), /not key\[=value\]:NoSchedule/);
});

test('cgroups: the lab cgroup the kubelet runs in, and the hierarchies from mountinfo', () => {
  assert.equal(labCgroupOfSelf('8:pids:/metallb-lab/kubelet-node1\n4:memory:/metallb-lab/kubelet-node1\n1:cpu:/\n'), 'metallb-lab');
  assert.equal(labCgroupOfSelf('0::/metallb-lab-kl/kubelet-node2\n'), 'metallb-lab-kl');
  assert.equal(labCgroupOfSelf('8:pids:/\n4:memory:/process_api/abc\n0::/\n'), undefined);
  assert.equal(labCgroupOfSelf('0::/system.slice/kubelet.service\n'), undefined);
  const v1 = detectCgroups(
    [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
      '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
    ].join('\n'),
  );
  assert.equal(v1.version, 'v1');
  assert.equal(v1.mounts.cpu, '/sys/fs/cgroup/cpu,cpuacct');
  assert.equal(v1.mounts.cpuacct, '/sys/fs/cgroup/cpu,cpuacct');
  assert.equal(detectCgroups('').version, 'none');
});

test('securityContext to setpriv: identity, capabilities, no_new_privs', async () => {
  const { setprivArgs, DEFAULT_CAPABILITIES } = await import('../../../src/cluster/kubelet/security.js');
  const p = pod();
  const root = { uid: 0, gid: 0 };
  assert.deepEqual(setprivArgs(p, { name: 'c' }, root), ['setpriv', `--bounding-set=-all${[...DEFAULT_CAPABILITIES].sort().map((c) => `,+${c}`).join('')}`, '--inh-caps=-all', '--']);
  const c = { name: 'c', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_RAW', 'CAP_NET_ADMIN'] } } } as never;
  assert.deepEqual(setprivArgs(p, c, root), ['setpriv', '--bounding-set=-all,+net_admin,+net_raw', '--inh-caps=-all', '--no-new-privs', '--']);
  const nobody = pod({ securityContext: { runAsUser: 65534, fsGroup: 2000 } } as never);
  assert.deepEqual(setprivArgs(nobody, { name: 'c' }, root).slice(0, 4), ['setpriv', '--reuid=65534', '--regid=0', '--groups=2000']);
  assert.deepEqual(setprivArgs(pod(), { name: 'c', securityContext: { privileged: true } } as never, root), ['setpriv', '--']);
  // The image's user (metallb-ts runs as 65534:65534) unless the pod says otherwise.
  assert.deepEqual(setprivArgs(pod(), { name: 'c' }, { uid: 65534, gid: 65534 }).slice(1, 4), ['--reuid=65534', '--regid=65534', '--clear-groups']);
  assert.throws(() => setprivArgs(pod({ securityContext: { runAsNonRoot: true } } as never), { name: 'c' }, root), /runAsNonRoot and image will run as root/);
  assert.throws(() => setprivArgs(pod(), { name: 'c', securityContext: { capabilities: { add: ['NET RAW'] } } } as never, root), /invalid capability/);
});

test("cgroups: CPU shares as the kubelet computes them: none requested is the minimum, not the kernel's 1024", () => {
  assert.equal(cpuShares(undefined), 2);
  assert.equal(cpuShares(0), 2);
  assert.equal(cpuShares(1), 2);
  assert.equal(cpuShares(50), 51);
  assert.equal(cpuShares(100), 102);
  assert.equal(cpuShares(1000), 1024);
  assert.equal(cpuShares(1_000_000), 262144);
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(sharesToWeight(262144), 10000);
});
