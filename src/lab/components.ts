// The processes a lab runs, as command lines (pure): the API server, controller-manager and scheduler in the host
// namespace (the control-plane machine), and a kubelet and a kube-proxy in each node's namespace.
import { join } from 'node:path';
import { credentialFiles } from './credentials.js';
import { paths } from './state.js';
import type { LabState } from './state.js';
import type { LabPlan, NodePlan } from './plan.js';

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

export function controlPlaneSpecs(state: LabState): ComponentSpec[] {
  const { plan } = state;
  const p = paths(plan.stateDir);
  const cred = credentialFiles(p.pki);
  return [
    {
      name: 'apiserver',
      tier: 0,
      args: [
        'dev-apiserver',
        '--host',
        plan.host.ipv4,
        '--port',
        String(plan.apiserverPort),
        '--data-file',
        p.apiserverData,
        '--service-cidr',
        plan.serviceCIDRs[0],
        '--service-cidr-v6',
        plan.serviceCIDRs[1],
        '--node-port-range',
        plan.nodePortRange,
        '--kubeconfig-out',
        p.kubeconfig,
      ],
    },
    { name: 'controller-manager', tier: 1, args: ['cluster', 'controller-manager', '--kubeconfig', cred.kubeconfig('controller-manager')] },
    { name: 'scheduler', tier: 1, args: ['cluster', 'scheduler', '--kubeconfig', cred.kubeconfig('scheduler')] },
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
      ],
    },
    {
      name: `proxy-${node.name}`,
      tier: 2,
      netns: node.netns,
      args: ['cluster', 'proxy', '--kubeconfig', cred.kubeconfig('proxy'), '--node-name', node.name],
    },
  ];
}

export function componentSpecs(state: LabState): ComponentSpec[] {
  return [...controlPlaneSpecs(state), ...state.plan.nodes.flatMap((n) => nodeSpecs(state, n))];
}
