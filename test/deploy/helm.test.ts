// The Helm chart: static checks always; rendering with a real helm binary when one is available
// ($HELM, `helm` on the PATH, or .tmp/helm/helm from deploy/helm/get-helm.sh). Helm is not packaged for this
// machine's Debian, so without it the render tests are skipped (and say so).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments, parse } from 'yaml';
import { DEPLOY, ROOT, loadYamlDocs, type Obj } from './lib.js';

const CHART = join(DEPLOY, 'helm', 'metallb-ts');
const TEMPLATES = join(CHART, 'templates');
const CHART_LABELS = ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/instance'];

function findHelm(): string | undefined {
  const candidates = [process.env.HELM, join(ROOT, '.tmp', 'helm', 'helm')];
  for (const c of candidates) if (c && existsSync(c)) return c;
  try {
    execFileSync('helm', ['version', '--short'], { stdio: 'ignore' });
    return 'helm';
  } catch {
    return undefined;
  }
}
const helm = findHelm();
const noHelm = helm ? false : 'no helm binary (set HELM, put helm on the PATH, or run deploy/helm/get-helm.sh)';

function render(args: string[] = []): Obj[] {
  const out = execFileSync(helm!, ['template', 'mlb', CHART, '--namespace', 'metallb-system', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return parseAllDocuments(out, { version: '1.1' })
    .map((d) => {
      assert.deepEqual(d.errors, []);
      return d.toJS() as Obj;
    })
    .filter((d) => d);
}

/**
 * The YAML structure around the template actions: actions that fill a whole line (or span lines) are dropped,
 * inline ones become a placeholder scalar. Catches indentation and syntax mistakes without a renderer.
 */
export function skeleton(template: string): string {
  const lines = template.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '').split('\n');
  const kept: string[] = [];
  let inAction = false;
  for (const line of lines) {
    if (inAction) {
      if (line.includes('}}')) inAction = false;
      continue;
    }
    const opens = (line.match(/\{\{/g) ?? []).length;
    const closes = (line.match(/\}\}/g) ?? []).length;
    if (opens > closes) {
      inAction = true;
      continue;
    }
    const rest = line.replace(/\{\{[^}]*\}\}/g, '').trim();
    if (opens > 0 && rest === '') continue;
    kept.push(line.replace(/\{\{[^}]*\}\}/g, 'X'));
  }
  return kept.join('\n');
}

test('Chart.yaml and values.yaml parse; the chart declares apiVersion v2', () => {
  const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
  assert.equal(chart.apiVersion, 'v2');
  assert.equal(chart.name, 'metallb-ts');
  assert.match(chart.version, /^\d+\.\d+\.\d+/);
  const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
  for (const k of ['image', 'controller', 'speaker', 'webhook', 'prometheus', 'logLevel', 'loadBalancerClass']) {
    assert.ok(k in values, `values.${k}`);
  }
  for (const c of ['controller', 'speaker']) {
    for (const k of ['enabled', 'resources', 'tolerations', 'nodeSelector']) assert.ok(k in values[c], `values.${c}.${k}`);
  }
  assert.equal(values.speaker.memberlist.enabled, true);
  assert.equal(values.prometheus.serviceMonitor.enabled, false);
  assert.ok(existsSync(join(TEMPLATES, 'NOTES.txt')));
});

test('every template parses as YAML once its template actions are blanked', () => {
  const files = readdirSync(TEMPLATES).filter((f) => f.endsWith('.yaml'));
  assert.deepEqual(files.sort(), ['controller.yaml', 'namespace.yaml', 'rbac.yaml', 'servicemonitor.yaml', 'speaker.yaml', 'webhook.yaml']);
  for (const f of files) {
    const docs = parseAllDocuments(skeleton(readFileSync(join(TEMPLATES, f), 'utf8')), { version: '1.1' });
    for (const d of docs) assert.deepEqual(d.errors.map((e) => e.message), [], f);
    const objs = docs.map((d) => d.toJS() as Obj).filter(Boolean);
    assert.ok(objs.length > 0, f);
    for (const o of objs) assert.ok(o.apiVersion && o.kind && o.metadata, `${f}: ${o.kind}`);
  }
});

test('the chart crds/ folder equals deploy/crds', () => {
  const a = readdirSync(join(CHART, 'crds')).sort();
  assert.deepEqual(a, readdirSync(join(DEPLOY, 'crds')).sort());
  for (const f of a) {
    assert.equal(readFileSync(join(CHART, 'crds', f), 'utf8'), readFileSync(join(DEPLOY, 'crds', f), 'utf8'), f);
  }
});

test('helm lint passes', { skip: noHelm }, () => {
  execFileSync(helm!, ['lint', CHART, '--strict'], { stdio: 'pipe' });
});

test('helm template with default values renders exactly the objects of deploy/manifests (plus chart labels)', { skip: noHelm }, () => {
  const rendered = render();
  for (const o of rendered) {
    for (const k of CHART_LABELS) {
      assert.ok(o.metadata.labels?.[k], `${o.kind} ${o.metadata.name} has ${k}`);
      delete o.metadata.labels[k];
    }
  }
  const expected = ['rbac.yaml', 'webhook.yaml', 'controller.yaml', 'speaker.yaml'].flatMap((f) =>
    loadYamlDocs(join(DEPLOY, 'manifests', f)),
  );
  assert.equal(rendered.length, expected.length);
  for (const e of expected) {
    const r = rendered.find((x) => x.kind === e.kind && x.metadata.name === e.metadata.name);
    assert.ok(r, `${e.kind} ${e.metadata.name} rendered`);
    assert.ok(isDeepStrictEqual(r, e), `${e.kind} ${e.metadata.name}:\n${JSON.stringify(r)}\n!=\n${JSON.stringify(e)}`);
  }
});

test('helm template honours the values (namespace, toggles, image, log level, class, ServiceMonitor)', { skip: noHelm }, () => {
  const objs = render([
    '--set', 'namespace.create=true',
    '--set', 'prometheus.serviceMonitor.enabled=true',
    '--set', 'speaker.memberlist.enabled=false',
    '--set', 'webhook.enabled=false',
    '--set', 'logLevel=debug',
    '--set', 'loadBalancerClass=example.com/lb',
    '--set', 'image.repository=registry.example/metallb-ts,image.tag=v9',
    '--set-json', 'controller.tolerations=[{"key":"k","operator":"Exists"}]',
  ]);
  const kinds = objs.map((o) => o.kind);
  assert.ok(kinds.includes('Namespace'));
  assert.equal(kinds.filter((k) => k === 'ServiceMonitor').length, 2);
  assert.ok(!kinds.includes('ValidatingWebhookConfiguration'));
  const ns = objs.find((o) => o.kind === 'Namespace')!;
  assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');
  const dep = objs.find((o) => o.kind === 'Deployment')!.spec.template.spec;
  assert.equal(dep.containers[0].image, 'registry.example/metallb-ts:v9');
  assert.ok(dep.containers[0].args.includes('--log-level=debug'));
  assert.ok(dep.containers[0].args.includes('--lb-class=example.com/lb'));
  assert.ok(dep.containers[0].args.includes('--webhook-mode=disabled'));
  assert.deepEqual(dep.tolerations, [{ key: 'k', operator: 'Exists' }]);
  const ds = objs.find((o) => o.kind === 'DaemonSet')!.spec.template.spec;
  assert.ok(!ds.containers[0].env.some((e: Obj) => e.name.startsWith('METALLB_ML_')));
  assert.ok(!ds.volumes.some((v: Obj) => v.secret));
  // Without the webhook, no grant for its configuration or its certificate Secret.
  const rules = (o: Obj[], kind: string, name: string): Obj[] => o.find((x) => x.kind === kind && x.metadata.name === name)!.rules as Obj[];
  assert.ok(!rules(objs, 'ClusterRole', 'metallb-system:controller').some((r) => r.resources.includes('validatingwebhookconfigurations')));
  assert.ok(!rules(objs, 'Role', 'controller').some((r) => r.verbs.includes('update') && r.resources.includes('secrets')));
  const none = render(['--set', 'controller.enabled=false,speaker.enabled=false']);
  assert.deepEqual(none, []);
});

test('helm template: speaker.xdp adds BPF and NET_ADMIN to the speaker, nothing else changes', { skip: noHelm }, () => {
  const caps = (o: Obj[]): string[] => o.find((x) => x.kind === 'DaemonSet')!.spec.template.spec.containers[0].securityContext.capabilities.add;
  const plain = render();
  assert.deepEqual(caps(plain), ['NET_RAW', 'SYS_NICE']);
  const xdp = render(['--set', 'speaker.xdp=true']);
  assert.deepEqual(caps(xdp), ['NET_RAW', 'SYS_NICE', 'BPF', 'NET_ADMIN']);
  const strip = (o: Obj[]): Obj[] => o.filter((x) => x.kind !== 'DaemonSet');
  assert.deepEqual(strip(xdp), strip(plain));
});

test('helm template: controller.replicas > 1 elects a leader (--leader-elect) and only then grants the Lease', { skip: noHelm }, () => {
  const leaseRules = (o: Obj[]): Obj[] => (o.find((x) => x.kind === 'Role' && x.metadata.name === 'controller')!.rules as Obj[]).filter((r) => r.apiGroups.includes('coordination.k8s.io'));
  const one = render();
  assert.deepEqual(leaseRules(one), []);
  assert.ok(!one.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].args.includes('--leader-elect'));
  const two = render(['--set', 'controller.replicas=2']);
  const dep = two.find((o) => o.kind === 'Deployment')!;
  assert.equal(dep.spec.replicas, 2);
  assert.ok(dep.spec.template.spec.containers[0].args.includes('--leader-elect'));
  assert.deepEqual(leaseRules(two), [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['metallb-controller'], verbs: ['get', 'update'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  ]);
});
