// Scrapes every node's kubelet Summary API once per resolution, concurrently, each with a timeout; a node that
// fails is logged and simply has no metrics this round (as metrics-server does).
import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../../log.js';
import { errorText } from '../../k8s/client.js';
import type { Informer } from '../../k8s/informers.js';
import type { Node } from '../common/types.js';
import { decodeSummary } from './summary.js';
import type { NodePoint, PodPoint } from './storage.js';

export interface ScraperOptions {
  /** Node address types in order of preference (`--kubelet-preferred-address-types`). */
  addressTypes: string[];
  /** Kubelet port when the Node does not report one (`--kubelet-port`). */
  port: number;
  /** Use the port in Node.status.daemonEndpoints (`--kubelet-use-node-status-port`). */
  useNodeStatusPort: boolean;
  scheme: 'http' | 'https';
  insecureTLS: boolean;
  timeoutMs: number;
}

export function kubeletURL(node: Node, o: Pick<ScraperOptions, 'addressTypes' | 'port' | 'useNodeStatusPort' | 'scheme'>): string | undefined {
  const addrs = node.status?.addresses ?? [];
  let host: string | undefined;
  for (const t of o.addressTypes) {
    host = addrs.find((a) => a.type === t && a.address)?.address;
    if (host) break;
  }
  if (!host) return undefined;
  const statusPort = (node.status as { daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } } | undefined)?.daemonEndpoints?.kubeletEndpoint?.Port;
  const port = o.useNodeStatusPort && statusPort ? statusPort : o.port;
  return `${o.scheme}://${host.includes(':') ? `[${host}]` : host}:${port}/stats/summary?only_cpu_and_memory=true`;
}

export class Scraper {
  private readonly agent: http.Agent;

  constructor(
    private readonly nodes: Informer<Node>,
    private readonly log: Logger,
    private readonly o: ScraperOptions,
  ) {
    this.agent = o.scheme === 'https' ? new https.Agent({ keepAlive: true, rejectUnauthorized: !o.insecureTLS }) : new http.Agent({ keepAlive: true });
  }

  close(): void {
    this.agent.destroy();
  }

  async scrape(): Promise<{ nodes: NodePoint[]; pods: PodPoint[]; failed: number }> {
    const nodes: NodePoint[] = [];
    const pods: PodPoint[] = [];
    let failed = 0;
    await Promise.all(
      this.nodes.list().map(async (n) => {
        const name = n.metadata?.name ?? '';
        const url = kubeletURL(n, this.o);
        if (!url) {
          failed++;
          this.log.warn({ node: name }, 'Failed to scrape node: no address of the preferred types');
          return;
        }
        try {
          const body = await this.get(url);
          const r = decodeSummary(JSON.parse(body), name, Date.now());
          if (r.node) nodes.push(r.node);
          pods.push(...r.pods);
        } catch (err) {
          failed++;
          this.log.warn({ node: name, url, err: errorText(err) }, 'Failed to scrape node');
        }
      }),
    );
    return { nodes, pods, failed };
  }

  private get(url: string): Promise<string> {
    const mod = url.startsWith('https:') ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.get(url, { agent: this.agent, timeout: this.o.timeoutMs, headers: { Accept: 'application/json', 'User-Agent': 'metrics-server/v0.7.2 (metallb-lab)' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if ((res.statusCode ?? 0) !== 200) reject(new Error(`request failed, status: "${res.statusCode} ${res.statusMessage ?? ''}"`));
          else resolve(Buffer.concat(chunks).toString('utf8'));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`context deadline exceeded (${this.o.timeoutMs} ms)`)));
      req.on('error', reject);
    });
  }
}
