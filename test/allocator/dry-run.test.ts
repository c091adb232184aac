// `metallb dry-run` end to end: spawns bin/metallb.js and checks exact JSON, the table and exit codes 0/1/2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { runDryRun, type DryRunOptions } from '../../src/cli/dry-run.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const fx = (name: string): string => join('test', 'fixtures', 'dry-run', name);

/** In-process run (same code path as the CLI action, without paying a process start per case). */
async function runIn(opts: Partial<DryRunOptions> & { filename: string[] }, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runDryRun({ output: 'table', namespace: 'metallb-system', lbClass: '', ...opts }, {
    readFile: (p) => readFile(join(root, p), 'utf8'),
    readStdin: async () => stdin,
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}

function run(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['bin/metallb.js', 'dry-run', ...args], { cwd: root }, (err, stdout, stderr) => {
      const code = err && typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : err ? -1 : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const ALL_OK = {
  services: [
    { namespace: 'default', name: 'web', ips: ['192.168.10.0'], pool: 'default' },
    { namespace: 'default', name: 'dns-tcp', ips: ['192.168.10.1'], pool: 'default' },
    { namespace: 'default', name: 'dns-udp', ips: ['192.168.10.1'], pool: 'default' },
    { namespace: 'default', name: 'kept', ips: ['192.168.10.3'], pool: 'default' },
    { namespace: 'shop', name: 'shop-front', ips: ['10.50.0.1'], pool: 'prod' },
    { namespace: 'default', name: 'both', ips: ['192.168.20.1', 'fd00:20::'], pool: 'dual' },
  ],
};

test('dry-run -o json: exact output, exit 0', async () => {
  const r = await run(['-f', fx('config.yaml'), '-f', fx('services.yaml'), '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${JSON.stringify(ALL_OK)}\n`);
});


test('dry-run: pending services, exit 1, reasons in JSON', async () => {
  const r = await run(['-f', fx('config.yaml'), '-f', fx('services.yaml'), '-f', fx('services-pending.yaml'), '-o', 'json']);
  assert.equal(r.code, 1, r.stderr);
  const out = JSON.parse(r.stdout) as { services: { name: string; ips: string[]; pool?: string; error?: string }[] };
  assert.deepEqual(out.services.slice(0, 6), ALL_OK.services);
  assert.deepEqual(out.services.slice(6).map((s) => s.name), ['extra', 'outside', 'too-many']);
  assert.deepEqual(out.services[6], { namespace: 'default', name: 'extra', ips: ['192.168.10.2'], pool: 'default' });
  const outside = out.services[7]!;
  assert.deepEqual(Object.keys(outside), ['namespace', 'name', 'ips', 'error']);
  assert.deepEqual(outside.ips, []);
  assert.match(outside.error ?? '', /172\.16\.0\.1 is not in any IPAddressPool/);
  const tooMany = out.services[8]!.error ?? '';
  assert.match(tooMany, /pool default \(IPv4 4 of 4 in use\)/);
  assert.match(tooMany, /pool prod only serves namespaces shop/);
  assert.match(tooMany, /pool dual has autoAssign: false/);
});

test('dry-run table: columns, pending rows and reasons; other classes and non-LB services omitted', async () => {
  const t = await runIn({ filename: [fx('config.yaml'), fx('services.yaml'), fx('services-pending.yaml')] });
  assert.equal(t.code, 1, t.stderr);
  assert.match(t.stdout, /^NAMESPACE\s+NAME\s+IPS\s+POOL\n/);
  assert.match(t.stdout, /\ndefault\s+both\s+192\.168\.20\.1,fd00:20::\s+dual\n/);
  assert.match(t.stdout, /\nshop\s+shop-front\s+10\.50\.0\.1\s+prod\n/);
  assert.match(t.stdout, /\ndefault\s+too-many\s+<pending>\s+-\n/);
  assert.match(t.stdout, /9 LoadBalancer services: 7 allocated, 2 pending/);
  assert.match(t.stdout, /\n {2}default\/outside: cannot use the requested IP 172\.16\.0\.1: /);
  assert.doesNotMatch(t.stdout, /other-class|internal/);
});

test('dry-run: bad YAML and wrong types are input errors (exit 2, no stack trace)', async () => {
  const r = await run(['-f', fx('config.yaml'), '-f', fx('services-bad.yaml'), '-f', fx('services-syntax.yaml')]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /Service broken: metadata\.annotations: must be a mapping of strings/);
  assert.match(r.stderr, /Service broken: spec\.ports: must be a list/);
  assert.match(r.stderr, /services-syntax\.yaml:\d+:\d+: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('dry-run: unknown output format is a usage error (exit 2)', async () => {
  const r = await run(['-f', fx('config.yaml'), '-o', 'xml']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Allowed choices are table, json/);
});

test('dry-run --help shows an example, exit 0', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Examples:\n\s+\$ metallb dry-run -f/);
  assert.match(r.stdout, /Exit status: 0/);
});

test('dry-run: services from stdin; a restored address is kept ahead of new services', async () => {
  const svcs = `apiVersion: v1
kind: Service
metadata: {name: new}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: old}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 192.168.10.0}]}}
`;
  const r = await runIn({ filename: [fx('config.yaml'), '-'], output: 'json' }, svcs);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${JSON.stringify({ services: [
    { namespace: 'default', name: 'new', ips: ['192.168.10.1'], pool: 'default' },
    { namespace: 'default', name: 'old', ips: ['192.168.10.0'], pool: 'default' },
  ] })}\n`);
});

test('dry-run: unreadable file, invalid config, duplicate Service, non-mapping document: exit 2', async () => {
  const missing = await runIn({ filename: [fx('does-not-exist.yaml')] });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read .*does-not-exist\.yaml/);
  const invalid = await runIn({ filename: [fx('config-invalid.yaml'), fx('services.yaml')] });
  assert.equal(invalid.code, 2);
  assert.match(invalid.stderr, /IPAddressPool metallb-system\/broken: spec\.addresses\[0\]: /);
  assert.match(invalid.stderr, /invalid configuration: 1 error/);
  assert.equal(invalid.stdout, '');
  const dup = await runIn({ filename: [fx('config.yaml'), fx('services.yaml'), fx('services.yaml')] });
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /Service default\/web is defined twice/);
  const scalar = await runIn({ filename: [fx('config.yaml'), '-'] }, '- just\n- a list\n');
  assert.equal(scalar.code, 2);
  const wrongPort = await runIn({ filename: [fx('config.yaml'), '-'] }, 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: LoadBalancer, ports: [{port: "80"}], ipFamilies: IPv4}\n');
  assert.equal(wrongPort.code, 2);
  assert.match(wrongPort.stderr, /spec\.ports\[0\]\.port: must be an integer/);
  assert.match(wrongPort.stderr, /spec\.ipFamilies: /);
});

test('dry-run --lb-class handles only that class; no pools: all pending', async () => {
  const r = await runIn({ filename: [fx('config.yaml'), fx('services-pending.yaml')], lbClass: 'example.com/other', output: 'json' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${JSON.stringify({ services: [{ namespace: 'default', name: 'other-class', ips: ['192.168.10.0'], pool: 'default' }] })}\n`);
  const none = await runIn({ filename: [fx('services-pending.yaml')], output: 'json' });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no IPAddressPool in the input/);
  assert.match(none.stdout, /"error":"no IPAddressPool is configured"/);
});

test('dry-run: a restored Service whose address left the config moves after the others are restored', async () => {
  const svcs = `apiVersion: v1
kind: Service
metadata: {name: moved}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 172.16.0.9}]}}
---
apiVersion: v1
kind: Service
metadata: {name: stays}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 192.168.10.0}]}}
`;
  const r = await runIn({ filename: [fx('config.yaml'), '-'], output: 'json' }, svcs);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${JSON.stringify({ services: [
    { namespace: 'default', name: 'moved', ips: ['192.168.10.1'], pool: 'default' },
    { namespace: 'default', name: 'stays', ips: ['192.168.10.0'], pool: 'default' },
  ] })}\n`);
});
