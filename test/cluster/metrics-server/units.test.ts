// Pure parts: Quantity text as apimachinery prints it, metrics-server's two-point storage and its objects.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatBinarySI, formatDecimalSI, formatMilli, formatQuantity, milliValue, parseQuantity, QuantityError } from '../../../src/cluster/common/quantity.js';
import { MetricsStorage } from '../../../src/cluster/metrics-server/storage.js';
import { goDuration, nodeMetrics, podMetrics, metricsTable } from '../../../src/cluster/metrics-server/objects.js';
import { decodeSummary } from '../../../src/cluster/metrics-server/summary.js';

describe('Quantity', () => {
  it('formats canonically like resource.Quantity.String()', () => {
    const cases: [string, string][] = [
      ['100m', '100m'],
      ['0.5', '500m'],
      ['1.5', '1500m'],
      ['2000m', '2'],
      ['12000', '12k'],
      ['1e3', '1e3'],
      ['128Mi', '128Mi'],
      ['0.5Gi', '512Mi'],
      ['0.1Gi', '107374182400m'],
      ['1536', '1536'],
      ['0', '0'],
      ['100', '100'],
      ['1.0', '1'],
    ];
    for (const [input, want] of cases) assert.equal(formatQuantity(parseQuantity(input)), want, input);
  });

  it('MilliValue rounds up', () => {
    assert.equal(milliValue(parseQuantity('10m')), 10n);
    assert.equal(milliValue(parseQuantity('1')), 1000n);
    assert.equal(milliValue(parseQuantity('1n')), 1n);
    assert.equal(milliValue(parseQuantity('128Mi')), 134217728000n);
  });

  it('new quantities in metrics-server and HPA units', () => {
    assert.equal(formatDecimalSI(123456789n, -9), '123456789n');
    assert.equal(formatDecimalSI(123000000n, -9), '123m');
    assert.equal(formatDecimalSI(5n, -12), '1n', 'below nano rounds up');
    assert.equal(formatMilli(250), '250m');
    assert.equal(formatMilli(1000), '1');
    assert.equal(formatMilli(0), '0');
    assert.equal(formatBinarySI(52428800n), '50Mi');
    assert.equal(formatBinarySI(12345678n), '12345678');
    assert.equal(formatBinarySI(4096n * 3n), '12Ki');
  });

  it('refuses what is not a quantity', () => {
    for (const bad of ['', 'abc', '1.2.3', '5Xi', 'm']) assert.throws(() => parseQuantity(bad), QuantityError, bad);
  });
});

describe('metrics-server storage', () => {
  const T0 = Date.parse('2026-01-01T00:00:00Z');
  const pod = (ts: number, cpuNs: bigint, start = T0 - 3600_000) => ({ namespace: 'default', name: 'p', containers: [{ name: 'c', startTime: start, timestamp: ts, cpuNs, memoryBytes: 1000n }] });

  it('gives the CPU rate over the window between two scrapes, and the latest working set', () => {
    const s = new MetricsStorage(15_000);
    s.store([{ name: 'n', startTime: T0 - 3600_000, timestamp: T0, cpuNs: 10_000_000_000n, memoryBytes: 5n }], [pod(T0, 1_000_000_000n)]);
    assert.equal(s.pod('default', 'p'), undefined, 'one point is not a rate');
    assert.equal(s.node('n'), undefined);
    s.store([{ name: 'n', startTime: T0 - 3600_000, timestamp: T0 + 15_000, cpuNs: 13_000_000_000n, memoryBytes: 7n }], [pod(T0 + 15_000, 4_750_000_000n)]);
    const p = s.pod('default', 'p')!;
    assert.equal(p.windowMs, 15_000);
    assert.equal(p.containers[0]!.cpuNanoCores, 250_000_000n, '3.75 s of CPU over 15 s = 250m');
    assert.equal(s.node('n')!.cpuNanoCores, 200_000_000n);
    assert.equal(s.node('n')!.memoryBytes, 7n);
  });

  it('a restarted container (start after the stored point) starts over; a decreasing counter is no rate', () => {
    const s = new MetricsStorage(15_000);
    s.store([], [pod(T0, 5_000_000_000n)]);
    s.store([], [pod(T0 + 15_000, 100n, T0 + 14_000)]);
    assert.equal(s.pod('default', 'p'), undefined);
    const t = new MetricsStorage(15_000);
    t.store([], [pod(T0, 5_000_000_000n)]);
    t.store([], [pod(T0 + 15_000, 4_000_000_000n)]);
    assert.equal(t.pod('default', 'p'), undefined);
  });

  it('a container younger than one resolution (>= 10 s) has metrics from its first scrape', () => {
    const s = new MetricsStorage(15_000);
    s.store([], [pod(T0 + 12_000, 1_200_000_000n, T0)]);
    const p = s.pod('default', 'p')!;
    assert.equal(p.windowMs, 12_000);
    assert.equal(p.containers[0]!.cpuNanoCores, 100_000_000n);
    const young = new MetricsStorage(15_000);
    young.store([], [pod(T0 + 5_000, 500_000_000n, T0)]);
    assert.equal(young.pod('default', 'p'), undefined, 'under 10 s the rate would be noise');
  });

  it('a pod missing from a scrape is forgotten', () => {
    const s = new MetricsStorage(15_000);
    s.store([], [pod(T0, 1n)]);
    s.store([], [pod(T0 + 15_000, 2n)]);
    assert.ok(s.pod('default', 'p'));
    s.store([], []);
    assert.equal(s.pod('default', 'p'), undefined);
  });
});

describe('metrics.k8s.io objects', () => {
  it('Go durations', () => {
    assert.equal(goDuration(15e9), '15s');
    assert.equal(goDuration(15.003e9), '15.003s');
    assert.equal(goDuration(250e6), '250ms');
    assert.equal(goDuration(61.5e9), '1m1.5s');
    assert.equal(goDuration(0), '0s');
  });

  it('PodMetrics / NodeMetrics in metrics-server units, and their table', () => {
    const now = Date.parse('2026-01-01T00:00:20Z');
    const pm = podMetrics({ name: 'p', namespace: 'ns', labels: { a: 'b' } }, { timestamp: now - 5000, windowMs: 15_004, containers: [{ name: 'c', cpuNanoCores: 1_234_567n, memoryBytes: 1048576n * 3n, timestamp: 0, windowMs: 0 }] }, now);
    assert.deepEqual(pm, {
      kind: 'PodMetrics',
      apiVersion: 'metrics.k8s.io/v1beta1',
      metadata: { name: 'p', namespace: 'ns', creationTimestamp: '2026-01-01T00:00:20Z', labels: { a: 'b' } },
      timestamp: '2026-01-01T00:00:15Z',
      window: '15.004s',
      containers: [{ name: 'c', usage: { cpu: '1234567n', memory: '3Mi' } }],
    });
    const nm = nodeMetrics({ name: 'n' }, { timestamp: now, windowMs: 15_000, cpuNanoCores: 500_000_000n, memoryBytes: 1024n, }, now);
    assert.deepEqual(nm.usage, { cpu: '500m', memory: '1Ki' });
    const t = metricsTable([pm], 'None') as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    assert.deepEqual(t.columnDefinitions.map((c) => c.name), ['Name', 'cpu', 'memory', 'Window']);
    assert.deepEqual(t.rows[0]!.cells, ['p', '1234567n', '3Mi', '15.004s']);
  });

  it('decodes the kubelet summary; containers without figures are left out', () => {
    const r = decodeSummary(
      {
        node: { nodeName: 'n', startTime: '2026-01-01T00:00:00Z', cpu: { usageCoreNanoSeconds: 5 }, memory: { workingSetBytes: 6 } },
        pods: [{ podRef: { name: 'p', namespace: 'ns' }, containers: [{ name: 'a', startTime: '2026-01-01T00:00:00Z', cpu: { usageCoreNanoSeconds: 1 }, memory: { workingSetBytes: 2 } }, { name: 'b', startTime: '2026-01-01T00:00:00Z' }] }],
      },
      'n',
      1000,
    );
    assert.equal(r.node?.cpuNs, 5n);
    assert.deepEqual(r.pods[0]!.containers.map((c) => c.name), ['a']);
    assert.throws(() => decodeSummary({}, 'n', 0), /neither "node" nor "pods"/);
  });
});
