// `metallb speaker` as MetalLB's manifests call it: flags and environment variables are read, and bad ones are refused
// at start with an error naming the flag or variable (no API server needed: these fail before it is contacted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, runCmd } from '../helpers/lab.js';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`;

/** The environment without any METALLB_* variable of the caller, plus `extra`. */
function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('METALLB_')) e[k] = v;
  return { ...e, ...extra };
}

async function speaker(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsp-cli-'));
  try {
    writeFileSync(join(dir, 'kubeconfig'), KUBECONFIG);
    const r = await runCmd(process.execPath, [BIN, 'speaker', '--kubeconfig', join(dir, 'kubeconfig'), ...args], { env: envWith(env), timeoutMs: 30_000 });
    return { code: r.code, out: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('--help lists MetalLB\'s speaker flags and environment variables', async () => {
  const r = await speaker(['--help']);
  assert.equal(r.code, 0);
  for (const s of ['--port', '--log-level', '--host', '--ignore-exclude-lb', '--ml-bindaddr', '--ml-bindport', '--ml-labels', '--ml-secret-key-path',
    '$METALLB_NODE_NAME', '$METALLB_HOST', '$METALLB_ML_BIND_ADDR', '$METALLB_ML_BIND_PORT', '$METALLB_ML_LABELS', '$METALLB_ML_SECRET_KEY_PATH']) {
    assert.ok(r.out.includes(s), `help mentions ${s}`);
  }
});

test('no node name: a clear error naming the flag and METALLB_NODE_NAME', async () => {
  const r = await speaker(['--namespace', 'metallb-system']);
  assert.notEqual(r.code, 0);
  assert.match(r.out, /must specify --node-name or METALLB_NODE_NAME/);
});

test('a bad --log-level is refused with the accepted values', async () => {
  const r = await speaker(['--log-level', 'loud', '--node-name', 'n1']);
  assert.notEqual(r.code, 0);
  assert.match(r.out, /"loud" is not one of all, debug, info, warn, error, none/);
});

test('node, namespace and memberlist settings come from the environment; a bad METALLB_ML_BIND_PORT is named', async () => {
  const r = await speaker(['--port=7472', '--log-level=info'], {
    METALLB_NODE_NAME: 'tsp-n1',
    METALLB_NAMESPACE: 'tsp-ns',
    METALLB_HOST: '10.0.0.1',
    METALLB_ML_BIND_ADDR: '10.0.0.1',
    METALLB_ML_LABELS: 'app=metallb,component=speaker',
    METALLB_ML_BIND_PORT: 'seven',
  });
  assert.notEqual(r.code, 0);
  assert.match(r.out, /"node":"tsp-n1","namespace":"tsp-ns"/);
  assert.match(r.out, /--ml-bindport \/ METALLB_ML_BIND_PORT: "seven" is not a port number/);
});

test('unknown flags of a newer MetalLB are warned about, not fatal', async () => {
  // A bad memberlist port stops it right after the warning, before it would contact the API server.
  const r = await speaker(['--some-future-flag=1', '--tls-min-version', 'VersionTLS12'], {
    METALLB_NODE_NAME: 'tsp-n1', METALLB_NAMESPACE: 'tsp-ns', METALLB_ML_BIND_ADDR: '10.0.0.1', METALLB_ML_LABELS: 'a=b', METALLB_ML_BIND_PORT: '-5',
  });
  assert.match(r.out, /ignoring unknown arguments \(flags of a newer MetalLB\?\): --some-future-flag=1/);
  assert.doesNotMatch(r.out, /unknown option|VersionTLS12/);
  assert.match(r.out, /METALLB_ML_BIND_PORT: "-5" is not a port number/);
});

test('metallb memberlist agent: bad --delegate-version, --preset, --bind and --log-level are named on stderr', async () => {
  for (const [args, msg] of [
    [['--delegate-version', '2,1,5'], /--delegate-version: "2,1,5": the current version must lie between min and max/],
    [['--preset', 'quick'], /--preset: one of fast, lan, wan, local/],
    [['--bind', '10.0.0.1:x'], /--bind: expected IP or IP:PORT, got "10.0.0.1:x"/],
    [['--log-level', 'loud'], /--log-level: unknown level "loud"/],
  ] as const) {
    const r = await runCmd(process.execPath, [BIN, 'memberlist', 'agent', '--name', 'tsp-x', '--bind', '127.0.0.1:0', ...args], { env: envWith({}), timeoutMs: 30_000 });
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, msg);
  }
});
