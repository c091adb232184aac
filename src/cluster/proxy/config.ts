// What the proxy takes from kubeadm's `kube-system/kube-proxy` ConfigMap (config.conf, a KubeProxyConfiguration):
// the pod network (`clusterCIDR`) and the `mode`, which is only reported: this proxy always programs nftables.
import { parse as parseYaml } from 'yaml';
import { errorText, type KubeClient } from '../../k8s/client.js';
import { objectPath } from '../../k8s/resources.js';
import type { Logger } from '../../log.js';
import { CR } from '../common/resources.js';
import type { ConfigMap } from '../common/types.js';

export interface KubeProxyConfig {
  mode?: string;
  clusterCIDRs: string[];
}

export function parseKubeProxyConfig(text: string): KubeProxyConfig {
  const doc = parseYaml(text) as { mode?: unknown; clusterCIDR?: unknown } | null;
  const cidr = typeof doc?.clusterCIDR === 'string' ? doc.clusterCIDR : '';
  return {
    ...(typeof doc?.mode === 'string' ? { mode: doc.mode } : {}),
    clusterCIDRs: cidr
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}

/** Best effort: a proxy without read access to the ConfigMap (as kube-proxy's RBAC gives none) runs on its flags. */
export async function readKubeProxyConfig(client: KubeClient, log: Logger): Promise<KubeProxyConfig | undefined> {
  try {
    const cm = await client.get<ConfigMap>(objectPath(CR.configMaps, 'kube-system', 'kube-proxy'), { timeoutMs: 5000 });
    const text = cm.data?.['config.conf'];
    if (!text) return undefined;
    const cfg = parseKubeProxyConfig(text);
    if (cfg.mode && cfg.mode !== 'nftables') log.info({ mode: cfg.mode }, 'kube-proxy ConfigMap asks for another mode; this proxy programs nftables');
    return cfg;
  } catch (err) {
    log.debug({ err: errorText(err) }, 'kube-system/kube-proxy ConfigMap not read');
    return undefined;
  }
}
