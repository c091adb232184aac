// The Node object and its heartbeats: registration (labels, taints, podCIDRs, addresses, capacity, nodeInfo, the
// kubelet endpoint), the Lease in kube-node-lease renewed every 10 s, and node status reported when it changes or
// every report interval, with the kubelet's condition reasons and messages.
import { createHash } from 'node:crypto';
import { readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import type { Logger } from '../../log.js';
import { errorText, isAlreadyExists, isConflict, isNotFound, type KubeClient } from '../../k8s/client.js';
import { LoopControl } from '../../k8s/loop.js';
import { IMAGES } from './images.js';

export const KUBELET_VERSION = 'v1.32.0-metallb-lab';
export const RUNTIME_VERSION = 'metallb-lab://0.1.0';

export interface Taint {
  key: string;
  value?: string;
  effect: string;
}

export interface NodeConfig {
  nodeName: string;
  nodeIPs: string[];
  podCIDRs: string[];
  labels: Record<string, string>;
  taints: Taint[];
  kubeletPort: number;
  maxPods: number;
  /** Overrides of the detected capacity (cores, bytes). */
  cpuCapacity?: number;
  memoryCapacity?: number;
  rootDir: string;
  leaseDurationSeconds: number;
  leaseRenewMs: number;
  statusUpdateMs: number;
  statusReportMs: number;
}

interface NodeCondition {
  type: string;
  status: string;
  lastHeartbeatTime: string;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

interface NodeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { podCIDR?: string; podCIDRs?: string[]; taints?: Taint[]; unschedulable?: boolean };
  status?: { conditions?: NodeCondition[]; [k: string]: unknown };
}

/** Parses `key=value:Effect` / `key:Effect` taints (--register-with-taints). */
export function parseTaints(list: string[]): Taint[] {
  return list.map((t) => {
    const m = /^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/.exec(t.trim());
    if (!m) throw new Error(`taint "${t}" is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute`);
    return { key: m[1]!, ...(m[2] !== undefined ? { value: m[2] } : {}), effect: m[3]! };
  });
}

export function kubeArch(arch = process.arch): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[arch] ?? arch;
}

const readOr = (p: string, d: string): string => {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return d;
  }
};

function osImage(): string {
  const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readOr('/etc/os-release', ''));
  return m ? m[1]! : `${os.type()} ${os.release()}`;
}

/** `2006-01-02T15:04:05.000000Z`, the MicroTime of Lease renewTime. */
export const microTime = (d = new Date()): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
const nowTime = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface Capacity {
  cpu: string;
  memory: string;
  pods: string;
  'ephemeral-storage': string;
  'hugepages-1Gi': string;
  'hugepages-2Mi': string;
}

export class NodeAgent {
  private readonly ctl = new LoopControl();
  private readonly statusCtl = new LoopControl();

  /**
   * A heartbeat that takes longer than the renew interval is abandoned, as the kubelet's heartbeat client does: after
   * the node's link was down, a kept-alive connection can sit in TCP retransmission back-off for tens of seconds, and
   * waiting the general 30 s request timeout on it let the lease lapse although the API server was reachable again.
   * Abandoning the request closes that connection; the next one is new.
   */
  private get heartbeatTimeoutMs(): number {
    return Math.max(1000, this.cfg.leaseRenewMs);
  }
  private lastReport = 0;
  private lastReported = '';
  private nodeUid: string | undefined;
  readonly capacity: Capacity;
  readonly allocatable: Capacity;
  /** Allocatable in numbers, for the downward API's unset limits. */
  readonly allocatableNumbers: { cpu: number; memory: number; 'ephemeral-storage': number };

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly cfg: NodeConfig,
  ) {
    const cpu = cfg.cpuCapacity ?? os.cpus().length;
    const mem = cfg.memoryCapacity ?? os.totalmem();
    let disk = 0;
    try {
      const st = statfsSync(cfg.rootDir);
      disk = st.blocks * st.bsize;
    } catch {
      disk = 0;
    }
    const ki = (b: number): string => `${Math.floor(b / 1024)}Ki`;
    this.capacity = { cpu: String(cpu), memory: ki(mem), pods: String(cfg.maxPods), 'ephemeral-storage': ki(disk), 'hugepages-1Gi': '0', 'hugepages-2Mi': '0' };
    // The kubelet's default hard eviction thresholds: memory.available<100Mi, nodefs.available<10%.
    const allocMem = Math.max(0, mem - 100 * 1024 * 1024);
    const allocDisk = Math.floor(disk * 0.9);
    this.allocatable = { ...this.capacity, memory: ki(allocMem), 'ephemeral-storage': String(allocDisk) };
    this.allocatableNumbers = { cpu, memory: allocMem, 'ephemeral-storage': allocDisk };
  }

  private labels(): Record<string, string> {
    const arch = kubeArch();
    return {
      'beta.kubernetes.io/arch': arch,
      'beta.kubernetes.io/os': 'linux',
      'kubernetes.io/arch': arch,
      'kubernetes.io/hostname': this.cfg.nodeName,
      'kubernetes.io/os': 'linux',
      ...this.cfg.labels,
    };
  }

  private addresses(): { type: string; address: string }[] {
    return [...this.cfg.nodeIPs.map((ip) => ({ type: 'InternalIP', address: ip })), { type: 'Hostname', address: this.cfg.nodeName }];
  }

  private nodeInfo(): Record<string, string> {
    const machine = readOr('/etc/machine-id', 'metallb-lab');
    // The lab's nodes share one machine; each gets ids of its own, derived from the machine's and its name.
    const h = createHash('sha256').update(`${machine}/${this.cfg.nodeName}`).digest('hex');
    return {
      machineID: h.slice(0, 32),
      systemUUID: `${h.slice(32, 40)}-${h.slice(40, 44)}-${h.slice(44, 48)}-${h.slice(48, 52)}-${h.slice(52, 64)}`,
      bootID: readOr('/proc/sys/kernel/random/boot_id', ''),
      kernelVersion: os.release(),
      osImage: osImage(),
      containerRuntimeVersion: RUNTIME_VERSION,
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: kubeArch(),
    };
  }

  private conditions(old: NodeCondition[] | undefined): NodeCondition[] {
    const now = nowTime();
    const mk = (type: string, status: string, reason: string, message: string): NodeCondition => {
      const prev = old?.find((c) => c.type === type);
      return { type, status, lastHeartbeatTime: now, lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : now, reason, message };
    };
    return [
      mk('NetworkUnavailable', 'False', 'RouteCreated', 'the metallb-ts kubelet set up the routed pod network on this node'),
      mk('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
      mk('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      mk('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
      mk('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
    ];
  }

  private status(old: NodeCondition[] | undefined): Record<string, unknown> {
    return {
      capacity: this.capacity,
      allocatable: this.allocatable,
      conditions: this.conditions(old),
      addresses: this.addresses(),
      daemonEndpoints: { kubeletEndpoint: { Port: this.cfg.kubeletPort } },
      nodeInfo: this.nodeInfo(),
      images: Object.values(IMAGES).map((s) => ({ names: [s.display.includes('/') && s.display.includes('.') ? `${s.display}:latest` : `docker.io/${s.display.includes('/') ? s.display : `library/${s.display}`}:latest`], sizeBytes: 0 })),
    };
  }

  /** Creates the Node, or brings an existing one up to date (labels, addresses, podCIDRs when unset). */
  async register(): Promise<void> {
    const name = this.cfg.nodeName;
    const podCIDR = this.cfg.podCIDRs[0];
    const body: NodeObject = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: this.labels(), annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' } },
      spec: {
        ...(podCIDR ? { podCIDR, podCIDRs: this.cfg.podCIDRs } : {}),
        ...(this.cfg.taints.length > 0 ? { taints: this.cfg.taints } : {}),
      },
    };
    let node: NodeObject;
    try {
      node = await this.client.post<NodeObject>('/api/v1/nodes', body);
      this.log.info({ node: name }, 'registered node');
    } catch (err) {
      if (!isAlreadyExists(err) && !isConflict(err)) throw err;
      const cur = await this.client.get<NodeObject>(`/api/v1/nodes/${encodeURIComponent(name)}`);
      const spec: Record<string, unknown> = {};
      if (podCIDR && !cur.spec?.podCIDR) Object.assign(spec, { podCIDR, podCIDRs: this.cfg.podCIDRs });
      else if (podCIDR && cur.spec?.podCIDR !== podCIDR) this.log.warn({ node: name, have: cur.spec?.podCIDRs, flag: this.cfg.podCIDRs }, 'the Node already has other podCIDRs (immutable); pods get addresses from --pod-cidr');
      node = await this.client.mergePatch<NodeObject>(`/api/v1/nodes/${encodeURIComponent(name)}`, { metadata: { labels: this.labels() }, ...(Object.keys(spec).length > 0 ? { spec } : {}) });
      this.log.info({ node: name }, 'node already registered; updated it');
    }
    this.nodeUid = node.metadata.uid;
    await this.reportStatus(true);
  }

  /** Writes node status when it changed or the report interval passed. */
  async reportStatus(force = false): Promise<void> {
    const name = this.cfg.nodeName;
    const cur = await this.client.get<NodeObject>(`/api/v1/nodes/${encodeURIComponent(name)}`).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!cur) {
      // Someone deleted the Node: register again, as the kubelet does.
      this.log.warn({ node: name }, 'the Node object is gone; registering again');
      await this.register();
      return;
    }
    this.nodeUid = cur.metadata.uid;
    const status = this.status(cur.status?.conditions);
    const { conditions, ...rest } = status;
    const fingerprint = JSON.stringify({ rest, c: (conditions as NodeCondition[]).map((c) => [c.type, c.status, c.reason]) });
    const due = Date.now() - this.lastReport >= this.cfg.statusReportMs;
    if (!force && !due && fingerprint === this.lastReported) return;
    await this.client.mergePatch(`/api/v1/nodes/${encodeURIComponent(name)}/status`, { status }, { timeoutMs: this.heartbeatTimeoutMs });
    this.lastReport = Date.now();
    this.lastReported = fingerprint;
  }

  /** Renews (or creates) the node's Lease. */
  async renewLease(): Promise<void> {
    const name = this.cfg.nodeName;
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${encodeURIComponent(name)}`;
    const spec = { holderIdentity: name, leaseDurationSeconds: this.cfg.leaseDurationSeconds, renewTime: microTime() };
    try {
      await this.client.mergePatch(path, { spec }, { timeoutMs: this.heartbeatTimeoutMs });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.post('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name,
          namespace: 'kube-node-lease',
          ...(this.nodeUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: this.nodeUid }] } : {}),
        },
        spec,
      });
    }
  }

  start(): void {
    this.ctl.start(async () => {
      while (this.ctl.running) {
        let renewed = true;
        try {
          await this.renewLease();
        } catch (err) {
          renewed = false;
          this.log.warn({ err: errorText(err) }, 'renewing the node lease failed');
        }
        // After a failure, try again soon: the node is declared not ready when the lease lapses.
        await this.ctl.sleep(renewed ? this.cfg.leaseRenewMs : Math.min(1000, this.cfg.leaseRenewMs));
      }
    });
    this.statusCtl.start(async () => {
      while (this.statusCtl.running) {
        await this.statusCtl.sleep(this.cfg.statusUpdateMs);
        if (!this.statusCtl.running) break;
        try {
          await this.reportStatus();
        } catch (err) {
          this.log.warn({ err: errorText(err) }, 'updating node status failed');
        }
      }
    });
  }

  async stop(): Promise<void> {
    await Promise.all([this.ctl.stop(), this.statusCtl.stop()]);
  }
}
