// Test helper: a kubelet Summary API (`/stats/summary`) whose cumulative CPU counters grow at rates the test sets,
// so metrics-server's rates can be checked to the millicore.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeContainer {
  name: string;
  /** millicores */
  cpuMilli: number;
  memoryBytes: number;
}

export interface FakePod {
  namespace: string;
  name: string;
  containers: FakeContainer[];
}

interface Counter {
  ns: number;
  at: number;
  rateMilli: number;
}

export class FakeKubelet {
  private server: Server | undefined;
  private readonly counters = new Map<string, Counter>();
  private readonly start = new Date(Date.now() - 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  pods: FakePod[] = [];
  requests = 0;

  constructor(readonly nodeName: string) {}

  /** Cumulative ns of CPU of a counter at `now`, advancing it at its current rate. */
  private counter(key: string, rateMilli: number, now: number): number {
    const c = this.counters.get(key) ?? { ns: 1e9, at: now, rateMilli };
    c.ns += ((now - c.at) / 1000) * c.rateMilli * 1e6;
    c.at = now;
    c.rateMilli = rateMilli;
    this.counters.set(key, c);
    return Math.round(c.ns);
  }

  summary(): unknown {
    const now = Date.now();
    const iso = new Date(now).toISOString().replace(/\.\d+Z$/, 'Z');
    let nodeNs = 0;
    let nodeMem = 0;
    const pods = this.pods.map((p) => ({
      podRef: { name: p.name, namespace: p.namespace, uid: `${p.namespace}-${p.name}` },
      startTime: this.start,
      containers: p.containers.map((c) => {
        const ns = this.counter(`${p.namespace}/${p.name}/${c.name}`, c.cpuMilli, now);
        nodeNs += ns;
        nodeMem += c.memoryBytes;
        return { name: c.name, startTime: this.start, cpu: { time: iso, usageNanoCores: c.cpuMilli * 1e6, usageCoreNanoSeconds: ns }, memory: { time: iso, workingSetBytes: c.memoryBytes, usageBytes: c.memoryBytes } };
      }),
    }));
    return {
      node: { nodeName: this.nodeName, startTime: this.start, cpu: { time: iso, usageCoreNanoSeconds: nodeNs }, memory: { time: iso, workingSetBytes: nodeMem } },
      pods,
    };
  }

  async listen(host = '127.0.0.1'): Promise<number> {
    const server = createServer((req, res) => {
      this.requests++;
      if (!req.url?.startsWith('/stats/summary')) {
        res.writeHead(404);
        res.end('404 page not found\n');
        return;
      }
      const body = JSON.stringify(this.summary());
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(body);
    });
    this.server = server;
    return await new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
  }

  close(): Promise<void> {
    return new Promise((r) => {
      if (!this.server) return r();
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}
