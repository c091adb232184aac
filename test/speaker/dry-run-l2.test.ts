// `metallb dry-run` layer 2 placement: the speaker's election over Nodes, EndpointSlices and --speakers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { runDryRun, parseSpeakers, type DryRunOptions } from '../../src/cli/dry-run.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const FX = join('test', 'fixtures', 'dry-run', 'l2.yaml');

async function runIn(opts: Partial<DryRunOptions>, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runDryRun({ filename: [FX], output: 'json', namespace: 'metallb-system', lbClass: '', ...opts }, {
    readFile: (p) => readFile(join(root, p), 'utf8'),
    readStdin: async () => stdin,
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}

type Entry = { name: string; layer2?: { node: string | null; reason?: string } };
const layer2 = (stdout: string): Record<string, Entry['layer2']> =>
  Object.fromEntries((JSON.parse(stdout) as { services: Entry[] }).services.map((e) => [e.name, e.layer2]));

// Hash orders (sha256(node#ip)): 10.97.0.1 → node3 node1 node4 node2; 10.97.0.2 → node1 node4 node3 node2;
// fd00:97::a → node2 node4 node3 node1. node4 is NetworkUnavailable.
test('dry-run layer2: exact JSON', async () => {
  const r = await runIn({});
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${JSON.stringify({
    services: [
      { namespace: 'default', name: 'web', ips: ['10.97.0.1'], pool: 'lan', layer2: { node: 'node3' } },
      { namespace: 'default', name: 'local', ips: ['10.97.0.2'], pool: 'lan', layer2: { node: 'node2' } },
      { namespace: 'default', name: 'down', ips: ['10.97.0.3'], pool: 'lan', layer2: { node: null, reason: 'the service has no serving endpoint (notOwner)' } },
      { namespace: 'default', name: 'v6', ips: ['fd00:97::a'], pool: 'lan', layer2: { node: 'node2' } },
      { namespace: 'default', name: 'routed', ips: ['10.97.1.0'], pool: 'routed' },
    ],
  })}\n`);
});

test('dry-run layer2: --speakers says who takes over', async () => {
  const r = await runIn({ speakers: ['node1', 'node2'] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(layer2(r.stdout), {
    web: { node: 'node1' },
    local: { node: 'node2' },
    down: { node: null, reason: 'the service has no serving endpoint (notOwner)' },
    v6: { node: 'node2' },
    routed: undefined,
  });
  const only3 = layer2((await runIn({ speakers: ['node3'] })).stdout);
  assert.deepEqual(only3.web, { node: 'node3' });
  assert.equal(only3.local?.node, null);
  assert.match(only3.local?.reason ?? '', /no node may announce the service: node1 \(no live speaker\), node2 \(no live speaker\), node3 \(no serving endpoint on the node \(externalTrafficPolicy: Local\)\), node4 \(no live speaker\) \(notOwner\)/);
  const ghost = await runIn({ speakers: ['nodeX'] });
  assert.match(ghost.stderr, /--speakers: nodeX is not a Node in the input/);
  assert.equal(layer2(ghost.stdout).web?.node, null);
});

test('dry-run layer2: table column and reasons; no column without L2Advertisements', async () => {
  const t = await runIn({ output: 'table' });
  assert.match(t.stdout, /^NAMESPACE\s+NAME\s+IPS\s+POOL\s+LAYER2\n/);
  assert.match(t.stdout, /\ndefault\s+web\s+10\.97\.0\.1\s+lan\s+node3\n/);
  assert.match(t.stdout, /\ndefault\s+down\s+10\.97\.0\.3\s+lan\s+<none>\n/);
  assert.match(t.stdout, /\ndefault\s+routed\s+10\.97\.1\.0\s+routed\s+-\n/);
  assert.match(t.stdout, /not announced in layer 2:\n {2}default\/down: the service has no serving endpoint \(notOwner\)\n/);
  const plain = await runIn({ filename: [join('test', 'fixtures', 'dry-run', 'config.yaml'), join('test', 'fixtures', 'dry-run', 'services.yaml')], output: 'table' });
  assert.match(plain.stdout, /^NAMESPACE\s+NAME\s+IPS\s+POOL\n/);
});

test('dry-run layer2: no Node objects => node null with the reason', async () => {
  const text = (await readFile(join(root, FX), 'utf8')).split('\n---\n').filter((d) => !/kind: List/.test(d)).join('\n---\n');
  const r = await runIn({ filename: ['-'] }, text);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(layer2(r.stdout).web, { node: null, reason: 'no Node objects in the input' });
});

test('dry-run layer2: --ignore-exclude-lb and the CLI flags', async () => {
  const text = (await readFile(join(root, FX), 'utf8')).replace('{name: node3, labels: {kubernetes.io/hostname: node3}}', '{name: node3, labels: {node.kubernetes.io/exclude-from-external-load-balancers: "true"}}');
  assert.equal(layer2((await runIn({ filename: ['-'] }, text)).stdout).web?.node, 'node1');
  assert.equal(layer2((await runIn({ filename: ['-'], ignoreExcludeLb: true }, text)).stdout).web?.node, 'node3');
  assert.deepEqual(parseSpeakers(' node1, ,node2,node1 '), ['node1', 'node2']);
  const cli = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, ['bin/metallb.js', 'dry-run', '-f', FX, '-o', 'json', '--speakers', 'node2,node1'], { cwd: root }, (err, stdout) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout });
    });
  });
  assert.equal(cli.code, 0);
  assert.equal(layer2(cli.stdout).web?.node, 'node1');
});
