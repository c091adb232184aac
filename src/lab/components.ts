// The processes a lab runs, as command lines (pure): the API server, controller-manager and scheduler in the host
// namespace (the control-plane machine), and a kubelet and a kube-proxy in each node's namespace.
import { join } from 'node:path';
import { credentialFiles } from './credentials.js';
import { paths } from './state.js';
import type { LabState } from './state.js';
import { DEFAULT_LAB, type LabPlan, type NodePlan } from './plan.js';

export interface ComponentSpec {
  /** Unique, file-name safe: `apiserver`, `kubelet-node1`. */
  name: string;
  /** Stop order: higher stops first (node components before the control plane, the API server last). */
  tier: number;
  /** Network namespace to run in; undefined = the host's. */
  netns?: string;
  /** `metallb` arguments. */
  args: string[];
}

/** The URL components use to reach the API server (its LAN address: nodes reach it there). */
export const componentServerURL = (plan: LabPlan): string => `https://${plan.host.ipv4}:${plan.apiserverPort}`;

export const metallbBin = (root: string): string => join(root, 'bin', 'metallb.js');

/**
 * The API server as kube-apiserver runs in kubeadm's clusters: HTTPS only (its CA generated into pki/ on first start),
 * RBAC, the components' static tokens, the `kubernetes` Service pointing at the LAN address, kubeadm's kube-proxy
 * ConfigMap. The default lab also listens on loopback; a named lab does not (two labs would want 127.0.0.1:6443).
 */
export function apiserverArgs(plan: LabPlan): string[] {
  const p = paths(plan.stateDir);
  const cred = credentialFiles(p.pki);
  const binds = [plan.host.ipv4, plan.host.ipv6, ...(plan.name === DEFAULT_LAB ? ['127.0.0.1'] : [])];
  return [
    'dev-apiserver',
    '--cert-dir',
    p.pki,
    ...binds.flatMap((b) => ['--bind-address', b]),
    '--secure-port',
    String(plan.apiserverPort),
    '--advertise-address',
    plan.host.ipv4,
    '--token-auth-file',
    cred.tokens,
    '--authorization-mode',
    'RBAC',
    '--kube-proxy-configmap',
    'nftables',
    // Terminating namespaces are emptied by the controller-manager's namespace controller, as in kube.
    '--no-namespace-controller',
    '--cluster-cidr',
    plan.clusterCIDRs.join(','),
    '--service-cidr',
    plan.serviceCIDRs[0],
    '--service-cidr-v6',
    plan.serviceCIDRs[1],
    '--node-port-range',
    plan.nodePortRange,
    '--data-file',
    p.apiserverData,
    '--kubeconfig-out',
    p.kubeconfig,
  ];
}

export function controlPlaneSpecs(state: LabState): ComponentSpec[] {
  const { plan } = state;
  const p = paths(plan.stateDir);
  const cred = credentialFiles(p.pki);
  return [
    { name: 'apiserver', tier: 0, args: apiserverArgs(plan) },
    {
      name: 'controller-manager',
      tier: 1,
      args: [
        'cluster',
        'controller-manager',
        '--kubeconfig',
        cred.kubeconfig('controller-manager'),
        ...(state.hpaDownscaleStabilization ? ['--horizontal-pod-autoscaler-downscale-stabilization', state.hpaDownscaleStabilization] : []),
      ],
    },
    { name: 'scheduler', tier: 1, args: ['cluster', 'scheduler', '--kubeconfig', cred.kubeconfig('scheduler')] },
    { name: 'metrics-server', tier: 1, args: metricsServerArgs(state) },
  ];
}

/** The port metrics-server serves on, on the host's LAN address (its APIService's Service points there). */
export const METRICS_SERVER_PORT = 4443;

/** metrics-server as its manifest runs it (15 s resolution), reaching the lab's plain-HTTP kubelets by InternalIP. */
export function metricsServerArgs(state: LabState): string[] {
  const { plan } = state;
  const p = paths(plan.stateDir);
  return [
    'cluster',
    'metrics-server',
    '--kubeconfig',
    credentialFiles(p.pki).kubeconfig('metrics-server'),
    '--bind-address',
    plan.host.ipv4,
    '--secure-port',
    String(METRICS_SERVER_PORT),
    '--cert-dir',
    join(p.pki, 'metrics-server'),
    '--metric-resolution',
    '15s',
    '--kubelet-preferred-address-types',
    'InternalIP',
    '--kubelet-use-node-status-port',
    '--kubelet-scheme',
    'http',
  ];
}

export function nodeSpecs(state: LabState, node: NodePlan): ComponentSpec[] {
  const { plan } = state;
  const p = paths(plan.stateDir);
  const cred = credentialFiles(p.pki);
  return [
    {
      name: `kubelet-${node.name}`,
      tier: 2,
      netns: node.netns,
      args: [
        'cluster',
        'kubelet',
        '--kubeconfig',
        cred.kubeconfig(`kubelet-${node.name}`),
        '--node-name',
        node.name,
        '--node-ip',
        `${node.ipv4},${node.ipv6}`,
        '--pod-cidr',
        node.podCIDRs.join(','),
        '--root-dir',
        p.nodeRoot(node.name),
        '--netns-prefix',
        plan.podNetnsPrefix,
        '--cgroup-root',
        plan.cgroup,
      ],
    },
    {
      name: `proxy-${node.name}`,
      tier: 2,
      netns: node.netns,
      args: ['cluster', 'proxy', '--kubeconfig', cred.kubeconfig('proxy'), '--node-name', node.name, '--cluster-cidr', plan.clusterCIDRs.join(',')],
    },
  ];
}

/**
 * BGP mode: the router daemon, run by `metallb lab router` from the host namespace (it enters the router's itself).
 * Stopped with the node components, so that the speakers' Ceases still reach it.
 */
export function routerSpecs(state: LabState): ComponentSpec[] {
  if (state.plan.mode !== 'bgp' || !state.plan.bgp) return [];
  return [{ name: 'router', tier: 1, args: ['lab', 'router', '--name', state.plan.name, '--state-dir', state.plan.stateDir] }];
}

export function componentSpecs(state: LabState): ComponentSpec[] {
  return [...controlPlaneSpecs(state), ...routerSpecs(state), ...state.plan.nodes.flatMap((n) => nodeSpecs(state, n))];
}
