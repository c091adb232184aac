// `metallb dry-run` BGP routes: what each node would advertise to each peer, from the speaker's policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { runDryRun, type DryRunOptions } from '../../../src/cli/dry-run.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const FX = join('test', 'fixtures', 'dry-run', 'bgp.yaml');

async function runIn(opts: Partial<DryRunOptions>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runDryRun({ filename: [FX], output: 'json', namespace: 'metallb-system', lbClass: '', ...opts }, {
    readFile: (p) => readFile(join(root, p), 'utf8'),
    readStdin: async () => '',
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}

type Route = { node: string; peer: string; prefix: string; localPref: number; communities: string[] };
const bgp = (stdout: string): Record<string, Route[] | undefined> =>
  Object.fromEntries((JSON.parse(stdout) as { services: { name: string; bgp?: Route[] }[] }).services.map((e) => [e.name, e.bgp]));

const host = (node: string, peer: string, prefix: string): Route => ({ node, peer, prefix, localPref: 0, communities: ['64500:100', '65535:65282'] });

test('dry-run bgp: per node and peer, with aggregation, localPref, communities, peer and node selectors', async () => {
  const r = await runIn({});
  assert.equal(r.code, 0, r.stderr);
  const out = bgp(r.stdout);
  assert.deepEqual(out['web'], [
    host('node1', 'tor-a', '10.91.0.7/32'),
    { node: 'node1', peer: 'tor-a', prefix: '10.91.0.0/24', localPref: 200, communities: [] },
    host('node2', 'tor-a', '10.91.0.7/32'),
    { node: 'node2', peer: 'tor-a', prefix: '10.91.0.0/24', localPref: 200, communities: [] },
    host('node3', 'tor-a', '10.91.0.7/32'),
    host('node3', 'tor-b', '10.91.0.7/32'),
    { node: 'node3', peer: 'tor-a', prefix: '10.91.0.0/24', localPref: 200, communities: [] },
  ]);
  // externalTrafficPolicy Local: only node2 has an endpoint; an IPv4 peer carries no IPv6 route.
  assert.deepEqual(out['local'], []);
  assert.deepEqual(out['rack'], [{ node: 'node3', peer: 'tor-a', prefix: '10.91.1.0/32', localPref: 0, communities: [] }, { node: 'node3', peer: 'tor-b', prefix: '10.91.1.0/32', localPref: 0, communities: [] }]);
});

test('dry-run bgp: --speakers leaves out the nodes whose speaker is down; the table names the advertising nodes', async () => {
  const r = await runIn({ speakers: ['node1', 'node2'] });
  assert.deepEqual(bgp(r.stdout)['rack'], []);
  assert.deepEqual(bgp(r.stdout)['web']?.map((x) => x.node), ['node1', 'node1', 'node2', 'node2']);
  const t = await runIn({ output: 'table' });
  assert.match(t.stdout, /BGP NODES/);
  assert.match(t.stdout, /default\s+web\s+10\.91\.0\.7\s+public\s+node1,node2,node3/);
  assert.match(t.stdout, /default\s+local\s+fd00:91::9\s+public\s+<none>/);
});
