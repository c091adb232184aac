// Pod lifecycle details: init containers (and a sidecar), restart policies, hooks, startup probes, resource limits
// in cgroups, subPath mounts, projected volumes, and MetalLB's images running our binary.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { countProcesses, createPod, events, getPod, kubeletGet, startTestNode, waitFor, type PodLike, type TestNode } from './harness.js';
import { ROOT } from '../../controller/helpers.js';

let t: TestNode;
const NS = 'default';

before(async () => {
  t = await startTestNode({ kubeletArgs: ['--node-labels', 'tkl.example/role=edge,zone=a', '--register-with-taints', 'tkl.example/dedicated=lab:NoSchedule', '--max-pods', '50'] });
  await t.client.post(`/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': t.api.caCert! } });
});
after(async () => {
  await t?.cleanup();
});

const pod = (name: string): Promise<PodLike | undefined> => getPod(t, NS, name);
const logsOf = async (name: string, c: string): Promise<string> => (await kubeletGet(t, `/containerLogs/${NS}/${name}/${c}`)).body;

interface FullStatus {
  phase?: string;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
  initContainerStatuses?: { name: string; state: Record<string, { exitCode?: number; reason?: string }>; restartCount: number; ready: boolean; started?: boolean }[];
  containerStatuses?: { name: string; state: Record<string, { exitCode?: number; reason?: string }>; restartCount: number; ready: boolean }[];
}
const full = async (name: string): Promise<FullStatus | undefined> => (await t.client.get<{ status?: FullStatus }>(`/api/v1/namespaces/${NS}/pods/${name}`).catch(() => undefined))?.status;

test('--node-labels, --register-with-taints and --max-pods shape the registered Node', async () => {
  const node = await t.client.get<{ metadata: { labels: Record<string, string> }; spec: { taints?: { key: string; value?: string; effect: string }[] }; status: { capacity: Record<string, string> } }>(`/api/v1/nodes/${t.nodeName}`);
  assert.equal(node.metadata.labels['tkl.example/role'], 'edge');
  assert.equal(node.metadata.labels.zone, 'a');
  assert.deepEqual(node.spec.taints, [{ key: 'tkl.example/dedicated', value: 'lab', effect: 'NoSchedule' }]);
  assert.equal(node.status.capacity.pods, '50');
});

test('init containers run in order before the app; a sidecar starts first and keeps running', async () => {
  await createPod(t, {
    metadata: { name: 'inits', namespace: NS },
    spec: {
      initContainers: [
        { name: 'first', image: 'nginx', command: ['sh', '-c', 'echo one > /shared/order'], volumeMounts: [{ name: 'shared', mountPath: '/shared' }] },
        // a sidecar counts as started once its process runs, unless a startup probe says more (as in kube): the probe
        // orders its write before the next init container's
        {
          name: 'side',
          image: 'nginx',
          restartPolicy: 'Always',
          command: ['sh', '-c', 'echo side >> /shared/order; exec sleep 3600'],
          startupProbe: { exec: { command: ['grep', '-q', 'side', '/shared/order'] }, periodSeconds: 1, failureThreshold: 60 },
          volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
        },
        { name: 'second', image: 'nginx', command: ['sh', '-c', 'echo two >> /shared/order'], volumeMounts: [{ name: 'shared', mountPath: '/shared' }] },
      ],
      containers: [{ name: 'app', image: 'nginx', command: ['sh', '-c', 'cat /shared/order; exec sleep 3600'], volumeMounts: [{ name: 'shared', mountPath: '/shared' }] }],
      volumes: [{ name: 'shared', emptyDir: {} }],
    },
  });
  const st = await waitFor('inits running', async () => {
    const s = await full('inits');
    return s?.phase === 'Running' && s.containerStatuses?.[0]?.state.running ? s : undefined;
  }, 60_000, 200);
  const init = Object.fromEntries((st.initContainerStatuses ?? []).map((s) => [s.name, s]));
  assert.equal(init.first?.state.terminated?.reason, 'Completed');
  assert.equal(init.second?.state.terminated?.exitCode, 0);
  assert.ok(init.side?.state.running, 'the sidecar runs');
  assert.equal(st.conditions?.find((c) => c.type === 'Initialized')?.status, 'True');
  await waitFor('app saw the order', async () => (await logsOf('inits', 'app')) === 'one\nside\ntwo\n', 30_000, 200);
});

test('a failing init container with restartPolicy Never fails the pod; with OnFailure it is retried', async () => {
  await createPod(t, {
    metadata: { name: 'initfail', namespace: NS },
    spec: { restartPolicy: 'Never', initContainers: [{ name: 'bad', image: 'nginx', command: ['sh', '-c', 'exit 7'] }], containers: [{ name: 'app', image: 'nginx' }] },
  });
  const failed = await waitFor('initfail Failed', async () => ((await full('initfail'))?.phase === 'Failed' ? await full('initfail') : undefined), 60_000, 200);
  assert.equal(failed.initContainerStatuses?.[0]?.state.terminated?.exitCode, 7);
  assert.equal(failed.containerStatuses?.[0]?.state.waiting?.reason, 'PodInitializing');
  await createPod(t, {
    metadata: { name: 'initretry', namespace: NS },
    spec: { restartPolicy: 'OnFailure', initContainers: [{ name: 'bad', image: 'nginx', command: ['sh', '-c', 'exit 7'] }], containers: [{ name: 'app', image: 'nginx' }] },
  });
  const retried = await waitFor('init retried', async () => {
    const s = await full('initretry');
    return (s?.initContainerStatuses?.[0]?.restartCount ?? 0) >= 1 ? s : undefined;
  }, 60_000, 200);
  assert.equal(retried.phase, 'Pending');
  assert.equal(retried.conditions?.find((c) => c.type === 'Initialized')?.message, 'containers with incomplete status: [bad]');
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/initfail`);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/initretry`);
});

test('restartPolicy OnFailure restarts a failed container but not a finished one; Never restarts neither', async () => {
  await createPod(t, {
    metadata: { name: 'onfail', namespace: NS },
    spec: {
      restartPolicy: 'OnFailure',
      containers: [
        { name: 'ok', image: 'nginx', command: ['true'] },
        { name: 'bad', image: 'nginx', command: ['sh', '-c', 'exit 2'] },
      ],
    },
  });
  const s = await waitFor('bad restarted', async () => {
    const x = await full('onfail');
    const bad = x?.containerStatuses?.find((c) => c.name === 'bad');
    return (bad?.restartCount ?? 0) >= 1 ? x : undefined;
  }, 60_000, 200);
  const ok = s.containerStatuses!.find((c) => c.name === 'ok')!;
  assert.equal(ok.restartCount, 0);
  assert.equal(ok.state.terminated?.reason, 'Completed');
  assert.equal(s.phase, 'Running');
  await createPod(t, { metadata: { name: 'never', namespace: NS }, spec: { restartPolicy: 'Never', containers: [{ name: 'bad', image: 'nginx', command: ['sh', '-c', 'exit 2'] }] } });
  const n = await waitFor('never Failed', async () => ((await full('never'))?.phase === 'Failed' ? await full('never') : undefined), 60_000, 200);
  assert.equal(n.containerStatuses?.[0]?.restartCount, 0);
  assert.equal(n.containerStatuses?.[0]?.state.terminated?.exitCode, 2);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/onfail`);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/never`);
});

test('a command that does not exist is a StartError', async () => {
  await createPod(t, { metadata: { name: 'noexec', namespace: NS }, spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'nginx', command: ['no-such-program-tkl'] }] } });
  const s = await waitFor('noexec Failed', async () => ((await full('noexec'))?.phase === 'Failed' ? await full('noexec') : undefined), 60_000, 200);
  assert.equal(s.containerStatuses?.[0]?.state.terminated?.reason, 'StartError');
  assert.equal(s.containerStatuses?.[0]?.state.terminated?.exitCode, 128);
  const ev = await events(t, NS, 'noexec');
  assert.ok(ev.some((e) => e.reason === 'Failed' && e.message.includes('exec: "no-such-program-tkl": executable file not found in $PATH')), JSON.stringify(ev));
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/noexec`);
});

test('postStart and preStop hooks run; deletion waits for the grace period of a process that ignores SIGTERM', async () => {
  await createPod(t, {
    metadata: { name: 'hooks', namespace: NS },
    spec: {
      // The preStop exec runs within the grace period: room for a loaded machine.
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: 'c',
          image: 'nginx',
          command: ['sh', '-c', 'trap "" TERM; while :; do sleep 0.2; done'],
          lifecycle: {
            postStart: { exec: { command: ['sh', '-c', 'echo started > /state/post'] } },
            preStop: { exec: { command: ['sh', '-c', 'echo stopping > /state/pre'] } },
          },
          volumeMounts: [{ name: 'state', mountPath: '/state' }],
        },
      ],
      volumes: [{ name: 'state', hostPath: { path: `${t.dir}/hooks`, type: 'DirectoryOrCreate' } }],
    },
  });
  await waitFor('postStart ran', () => {
    try {
      return readFileSync(`${t.dir}/hooks/post`, 'utf8') === 'started\n';
    } catch {
      return false;
    }
  }, 60_000, 200);
  const started = Date.now();
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/hooks`);
  await waitFor('no hooks processes left', () => countProcesses(/trap "" TERM/) === 0, 30_000, 100);
  const took = Date.now() - started;
  assert.ok(took >= 4500, `the process was given its grace period (${took} ms)`);
  assert.equal(readFileSync(`${t.dir}/hooks/pre`, 'utf8'), 'stopping\n');
});

test('a startup probe holds liveness and readiness until it succeeds', async () => {
  await createPod(t, {
    metadata: { name: 'slowstart', namespace: NS },
    spec: {
      containers: [
        {
          name: 'c',
          image: 'nginx',
          startupProbe: { exec: { command: ['cat', '/state/up'] }, periodSeconds: 1, failureThreshold: 60 },
          // One failure would restart it (the point: liveness must not run before startup succeeded); only a
          // missing file may count as one, not an exec slowed past the default 1 s timeout by a loaded machine.
          livenessProbe: { exec: { command: ['cat', '/state/up'] }, periodSeconds: 1, failureThreshold: 1, timeoutSeconds: 20 },
          volumeMounts: [{ name: 'state', mountPath: '/state' }],
        },
      ],
      volumes: [{ name: 'state', hostPath: { path: `${t.dir}/slow`, type: 'DirectoryOrCreate' } }],
    },
  });
  await waitFor('running', async () => (await pod('slowstart'))?.status?.containerStatuses?.[0]?.state.running !== undefined, 60_000, 200);
  await new Promise((r) => setTimeout(r, 3000));
  let s = await full('slowstart');
  const c0 = s?.containerStatuses?.[0] as { started?: boolean; restartCount: number; ready: boolean } | undefined;
  assert.equal(c0?.started, false);
  assert.equal(c0?.ready, false);
  if (c0?.restartCount !== 0) {
    // A restart here was seen twice in ~18 local runs (2026-12-02) and not reproduced since: say what the pod went through.
    assert.fail(`liveness does not run before startup succeeded; status: ${JSON.stringify(s)}; events: ${JSON.stringify(await events(t, NS, 'slowstart'))}`);
  }
  (await import('node:fs')).writeFileSync(`${t.dir}/slow/up`, 'yes');
  s = await waitFor('started and ready', async () => {
    const x = await full('slowstart');
    const c = x?.containerStatuses?.[0] as { started?: boolean; ready: boolean } | undefined;
    return c?.started && c.ready ? x : undefined;
  }, 30_000, 200);
  assert.equal(s.containerStatuses?.[0]?.restartCount, 0);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/slowstart`);
});

test('CPU and memory limits become the container cgroup limits', async () => {
  await createPod(t, {
    metadata: { name: 'limited', namespace: NS },
    spec: { containers: [{ name: 'c', image: 'nginx', resources: { requests: { cpu: '100m', memory: '32Mi' }, limits: { cpu: '250m', memory: '64Mi' } } }] },
  });
  const p = await waitFor('limited running', async () => ((await pod('limited'))?.status?.containerStatuses?.[0]?.state.running ? await pod('limited') : undefined), 60_000, 200);
  const uid = p.metadata.uid!;
  const base = (ctl: string): string => `/sys/fs/cgroup/${ctl}/${t.cgroupRoot}/${t.nodeName}/pod${uid}`;
  assert.equal(readFileSync(`${base('cpu')}/c/cpu.cfs_quota_us`, 'utf8').trim(), '25000');
  assert.equal(readFileSync(`${base('cpu')}/c/cpu.shares`, 'utf8').trim(), '102');
  assert.equal(readFileSync(`${base('memory')}/c/memory.limit_in_bytes`, 'utf8').trim(), String(64 * 1024 * 1024));
  assert.equal(readFileSync(`${base('cpu')}/cpu.cfs_quota_us`, 'utf8').trim(), '25000', 'pod-level limit: the sum of its containers');
  // Running is reported once the process is spawned; until the setup script exec's the workload, its own children
  // (mount) are in the cgroup with it.
  await waitFor('the container process alone in its cgroup', () => readFileSync(`${base('cpuacct')}/c/cgroup.procs`, 'utf8').trim().split('\n').length === 1, 30_000, 100);
  const qos = (await t.client.get<{ status: { qosClass: string } }>(`/api/v1/namespaces/${NS}/pods/limited`)).status.qosClass;
  assert.equal(qos, 'Burstable');
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/limited`);
});

test('subPath and projected volumes', async () => {
  await t.client.post(`/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'files' }, data: { 'a.conf': 'A\n', 'b.conf': 'B\n' } });
  await t.client.post(`/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'keys' }, stringData: { key: 'K' } });
  await createPod(t, {
    metadata: { name: 'vols', namespace: NS, annotations: { note: 'hi' } },
    spec: {
      containers: [
        {
          name: 'c',
          image: 'nginx',
          command: ['sh', '-c', 'cat /etc/tkl-a.conf /all/a /all/key /all/note; ls /all | sort | tr "\\n" " "; echo; stat -c %a /all/..data/key; exec sleep 3600'],
          volumeMounts: [
            { name: 'files', mountPath: '/etc/tkl-a.conf', subPath: 'a.conf' },
            { name: 'all', mountPath: '/all' },
          ],
        },
      ],
      volumes: [
        { name: 'files', configMap: { name: 'files' } },
        {
          name: 'all',
          projected: {
            defaultMode: 0o440,
            sources: [
              { configMap: { name: 'files', items: [{ key: 'a.conf', path: 'a' }] } },
              { secret: { name: 'keys', items: [{ key: 'key', path: 'key', mode: 0o400 }] } },
              { downwardAPI: { items: [{ path: 'note', fieldRef: { fieldPath: "metadata.annotations['note']" } }] } },
            ],
          },
        },
      ],
    },
  });
  const out = await waitFor('vols output', async () => {
    const l = await logsOf('vols', 'c');
    return l.split('\n').length >= 5 ? l : undefined;
  }, 60_000, 200);
  assert.equal(out, 'A\nA\nKhia key note \n400\n');
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/vols`);
});

test("MetalLB's images run this project's binary with the manifest's args", async () => {
  await createPod(t, {
    metadata: { name: 'mlb', namespace: NS },
    spec: {
      restartPolicy: 'Never',
      containers: [
        { name: 'speaker', image: 'quay.io/metallb/speaker:v0.14.9', args: ['--help'] },
        { name: 'ours', image: 'ghcr.io/example/metallb-ts:dev', args: ['--version'] },
        { name: 'where', image: 'metallb-ts', command: ['sh', '-c', 'pwd'] },
      ],
    },
  });
  const s = await waitFor('mlb done', async () => {
    const x = await full('mlb');
    return x?.phase === 'Succeeded' || x?.phase === 'Failed' ? x : undefined;
  }, 120_000, 500);
  assert.equal(s.phase, 'Succeeded', JSON.stringify(s));
  assert.match(await logsOf('mlb', 'speaker'), /Usage: metallb speaker/);
  assert.match(await logsOf('mlb', 'ours'), /^\d+\.\d+\.\d+\n$/);
  assert.equal(await logsOf('mlb', 'where'), `${ROOT}\n`, "the image's WORKDIR is the installation directory");
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/mlb`);
});

test('changing a container image restarts that container with the new image', async () => {
  await createPod(t, { metadata: { name: 'setimage', namespace: NS }, spec: { containers: [{ name: 'web', image: 'nginx' }] } });
  const ip = await waitFor('nginx answers', async () => {
    const p = await pod('setimage');
    const ip4 = p?.status?.podIP;
    return ip4 && t.inNode(`curl -s -m 2 http://${ip4}/`).out.includes('Welcome to nginx!') ? ip4 : undefined;
  }, 60_000, 200);
  await t.client.request('PATCH', `/api/v1/namespaces/${NS}/pods/setimage`, { body: { spec: { containers: [{ name: 'web', image: 'sysnet4admin/echo-hname' }] } }, contentType: 'application/strategic-merge-patch+json' });
  await waitFor('echo-hname answers', () => t.inNode(`curl -s -m 2 http://${ip}/`).out === 'setimage\n', 60_000, 200);
  const p = await pod('setimage');
  assert.equal(p?.status?.containerStatuses?.[0]?.restartCount, 1);
  const ev = await events(t, NS, 'setimage');
  assert.ok(ev.some((e) => e.reason === 'Killing' && e.message === 'Container web definition changed, will be restarted'), JSON.stringify(ev));
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/setimage`);
});

test('activeDeadlineSeconds fails the pod with DeadlineExceeded', async () => {
  await createPod(t, { metadata: { name: 'deadline', namespace: NS }, spec: { activeDeadlineSeconds: 2, containers: [{ name: 'c', image: 'nginx' }] } });
  const s = await waitFor('deadline Failed', async () => {
    const x = await t.client.get<{ status?: { phase?: string; reason?: string; message?: string } }>(`/api/v1/namespaces/${NS}/pods/deadline`);
    return x.status?.phase === 'Failed' ? x.status : undefined;
  }, 60_000, 200);
  assert.equal(s.reason, 'DeadlineExceeded');
  assert.equal(s.message, 'Pod was active on the node longer than the specified deadline');
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/deadline`);
});

test('the kubelet log endpoint: tailLines, limitBytes, timestamps, sinceTime, follow, errors', async () => {
  await createPod(t, {
    metadata: { name: 'logger', namespace: NS },
    spec: { containers: [{ name: 'c', image: 'nginx', command: ['sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; done; echo err >&2; sleep 2; echo late; exec sleep 3600'] }] },
  });
  const all = await waitFor('all lines', async () => {
    const b = await logsOf('logger', 'c');
    return b.includes('late') ? b : undefined;
  }, 60_000, 200);
  assert.equal(all, 'line1\nline2\nline3\nline4\nline5\nerr\nlate\n');
  const g = async (q: string): Promise<{ status: number; body: string }> => kubeletGet(t, `/containerLogs/${NS}/logger/c?${q}`);
  assert.equal((await g('tailLines=2')).body, 'err\nlate\n');
  assert.equal((await g('limitBytes=8')).body, 'line1\nli');
  const stamped = (await g('timestamps=true')).body.trim().split('\n');
  const lateStamp = stamped.at(-1)!.split(' ')[0]!;
  assert.match(lateStamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.equal((await g(`sinceTime=${encodeURIComponent(lateStamp)}`)).body, 'late\n');
  assert.equal((await g('sinceSeconds=3600')).body, all);
  // follow: the stream stays open and brings new lines.
  const ac = new AbortController();
  const res = await fetch(`http://${t.nodeIPs[0]}:10250/containerLogs/${NS}/logger/c?follow=true&tailLines=1`, { signal: ac.signal });
  const reader = res.body!.getReader();
  let got = '';
  const first = await reader.read();
  got += new TextDecoder().decode(first.value);
  assert.equal(got, 'late\n');
  ac.abort();
  await reader.cancel().catch(() => undefined);
  const bad = await kubeletGet(t, `/containerLogs/${NS}/logger/nope`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body, 'container nope is not valid for pod logger');
  assert.equal((await kubeletGet(t, `/containerLogs/${NS}/absent/c`)).status, 404);
  const prev = await kubeletGet(t, `/containerLogs/${NS}/logger/c?previous=true`);
  assert.equal(prev.status, 400);
  assert.equal(prev.body, 'previous terminated container "c" in pod "logger" not found');
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/logger`);
});

test('securityContext: user, groups, capabilities and runAsNonRoot as a runtime applies them', async () => {
  const show = 'echo "$(id -u) $(id -g) $(id -G)"; grep ^CapEff /proc/self/status; exec sleep 3600';
  await createPod(t, {
    metadata: { name: 'sec', namespace: NS },
    spec: {
      securityContext: { runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000], fsGroup: 2000 },
      containers: [
        { name: 'user', image: 'nginx', command: ['sh', '-c', show] },
        { name: 'raw', image: 'nginx', command: ['sh', '-c', show], securityContext: { runAsUser: 0, runAsGroup: 0, capabilities: { drop: ['ALL'], add: ['NET_RAW'] } } },
        { name: 'default', image: 'nginx', command: ['sh', '-c', show], securityContext: { runAsUser: 0, runAsGroup: 0 } },
        { name: 'priv', image: 'nginx', command: ['sh', '-c', show], securityContext: { runAsUser: 0, privileged: true } },
      ],
    },
  });
  const out = async (c: string): Promise<string> => waitFor(`sec/${c} output`, async () => {
    const l = await logsOf('sec', c);
    return l.includes('CapEff') ? l : undefined;
  }, 60_000, 200);
  assert.equal(await out('user'), '1000 3000 3000 2000 4000\nCapEff:\t0000000000000000\n');
  assert.equal(await out('raw'), `0 0 0 ${['2000', '4000'].join(' ')}\nCapEff:\t0000000000002000\n`);
  // containerd's default set: chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service net_raw
  // sys_chroot mknod audit_write setfcap
  const bits = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31].reduce((m, b) => m | (1n << BigInt(b)), 0n);
  assert.match(await out('default'), new RegExp(`CapEff:\\t${bits.toString(16).padStart(16, '0')}\\n$`));
  assert.doesNotMatch(await out('priv'), /CapEff:\t0000000000000000/);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/sec`);
  // runAsNonRoot with an image that runs as root: CreateContainerConfigError.
  await createPod(t, { metadata: { name: 'nonroot', namespace: NS }, spec: { securityContext: { runAsNonRoot: true }, containers: [{ name: 'c', image: 'nginx' }] } });
  const w = await waitFor('CreateContainerConfigError', async () => {
    const s = (await pod('nonroot'))?.status?.containerStatuses?.[0]?.state.waiting;
    return s?.reason === 'CreateContainerConfigError' ? s : undefined;
  }, 60_000, 200);
  assert.equal(w.message, 'container has runAsNonRoot and image will run as root');
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/nonroot`);
});
