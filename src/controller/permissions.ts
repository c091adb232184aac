// What the controller needs from its ServiceAccount, feature by feature, and the check at start. MetalLB's roles of
// v0.13 grant no IPAddressPool status, no ConfigurationState and no Leases; its controller may only `list` Nodes and
// `get,list` BGPPeers (no watch) and may not read ConfigMaps. Each feature whose permission is missing is turned off
// with one warning and `metallb_controller_feature_enabled{feature} 0`; reads that may list but not watch are polled.
import type { Logger } from '../log.js';
import { AccessReview, describeAccess, type AccessQuestion } from '../k8s/access.js';
import { FeatureGates } from '../k8s/features.js';
import { CONFIG_RESOURCES, R, type Resource } from '../k8s/resources.js';
import { CONFIGURATION_STATES } from './config-state.js';

/** Every controller feature that depends on a permission, with what is lost while it is off. */
export const CONTROLLER_FEATURES = {
  'service-status':
    'Services are not given addresses until the controller may update services/status (checked again every 30 s)',
  'pool-status': 'IPAddressPool status counters (assignedIPv4, availableIPv4, ...) are not written; the metallb_allocator_* metrics still have them',
  'configuration-state': 'the ConfigurationState "controller" is not written; configuration errors are still logged, recorded as events and in metallb_k8s_client_config_stale_bool',
  events: 'no Kubernetes events are recorded; the log still has them',
  'leader-election': 'this instance runs as the only leader without a Lease: run a single replica',
  'memberlist-secret': 'the speakers\' memberlist Secret is not created; create it, or the speakers run memberlist without it',
  'webhook-certificate-secret': 'the webhook certificate is generated at every start and kept in memory only',
  'webhook-ca-bundle': 'the CA bundle of the ValidatingWebhookConfiguration is not kept up to date; put the CA there yourself or use --cert-dir',
  'legacy-configmap': 'the legacy ConfigMap "config" (MetalLB <= v0.12) is not read',
} as const;

export type ControllerFeature = keyof typeof CONTROLLER_FEATURES;

export interface PermissionOptions {
  namespace: string;
  leaderElect: boolean;
  leaseName: string;
  mlSecretName: string;
  webhookSecretName: string;
  /** The webhook runs and keeps its certificate in a Secret (not `--cert-dir` files). */
  webhookSecret: boolean;
  webhookConfigurationName: string;
}

/** How each cache can be kept: watched, polled (list only), or not at all. */
export type ReadMode = 'watch' | 'list' | 'forbidden';

export interface ReadPlan {
  services: ReadMode;
  namespaces: ReadMode;
  nodes: ReadMode;
  secrets: ReadMode;
  configMaps: ReadMode;
  /** In CONFIG_RESOURCES order. */
  config: ReadMode[];
}

/** The requests each write feature makes. */
export function featureQuestions(o: PermissionOptions): Partial<Record<ControllerFeature, AccessQuestion[]>> {
  const ns = o.namespace;
  const q = (verb: string, resource: Resource, extra: Partial<AccessQuestion> = {}): AccessQuestion => ({ verb, resource, ...extra });
  return {
    'service-status': [q('update', R.services, { subresource: 'status' })],
    'pool-status': [q('update', R.ipAddressPools, { subresource: 'status', namespace: ns })],
    'configuration-state': [
      q('create', CONFIGURATION_STATES, { namespace: ns }),
      q('patch', CONFIGURATION_STATES, { subresource: 'status', namespace: ns, name: 'controller' }),
    ],
    events: [q('create', R.events), q('patch', R.events)],
    ...(o.leaderElect
      ? {
          'leader-election': [
            q('get', R.leases, { namespace: ns, name: o.leaseName }),
            q('create', R.leases, { namespace: ns }),
            q('update', R.leases, { namespace: ns, name: o.leaseName }),
          ],
        }
      : {}),
    ...(o.mlSecretName
      ? {
          // Reading it takes `get` (v0.13+) or `list` of that name (v0.10-v0.12 grant only that): either will do, and
          // without both, a creation answered AlreadyExists says it is there. Creating it is what it takes.
          'memberlist-secret': [q('create', R.secrets, { namespace: ns })],
        }
      : {}),
    ...(o.webhookSecret
      ? {
          'webhook-certificate-secret': [
            q('get', R.secrets, { namespace: ns, name: o.webhookSecretName }),
            q('create', R.secrets, { namespace: ns }),
            q('update', R.secrets, { namespace: ns, name: o.webhookSecretName }),
          ],
          'webhook-ca-bundle': ['get', 'update'].map((v) => q(v, R.validatingWebhookConfigurations, { name: o.webhookConfigurationName })),
        }
      : {}),
  };
}

/**
 * Asks the API server (SelfSubjectAccessReview) about every feature and read; turns off what is refused (one warning
 * each). A question without an answer counts as allowed: the feature then goes off on its first 403 instead.
 */
export async function checkPermissions(access: AccessReview, gates: FeatureGates<ControllerFeature>, o: PermissionOptions, log: Logger): Promise<ReadPlan> {
  const questions = featureQuestions(o);
  for (const f of ['leader-election', 'memberlist-secret', 'webhook-certificate-secret', 'webhook-ca-bundle'] as const) if (!questions[f]) gates.notUsed(f);
  await Promise.all(
    (Object.entries(questions) as [ControllerFeature, AccessQuestion[]][]).map(async ([feature, qs]) => {
      const refused = await access.firstRefused(qs);
      if (refused) gates.disable(feature, `not allowed to ${describeAccess(refused)}`, { permission: describeAccess(refused) });
    }),
  );
  const ns = o.namespace;
  const mode = async (r: Resource, namespace?: string): Promise<ReadMode> => {
    const a = await access.readAccess(r, namespace);
    // 'absent' (a CRD not installed): the informer waits for it.
    return a === 'absent' ? 'watch' : a;
  };
  const [services, namespaces, nodes, secrets, configMaps, ...config] = await Promise.all([
    mode(R.services),
    mode(R.namespaces),
    mode(R.nodes),
    mode(R.secrets, ns),
    mode(R.configMaps, ns),
    ...CONFIG_RESOURCES.map((r) => mode(r, ns)),
  ]);
  const plan: ReadPlan = { services: services!, namespaces: namespaces!, nodes: nodes!, secrets: secrets!, configMaps: configMaps!, config };
  if (plan.configMaps === 'forbidden') gates.disable('legacy-configmap', `not allowed to ${describeAccess({ verb: 'list', resource: R.configMaps, namespace: ns })}`);
  const named: [string, ReadMode][] = [
    ['services', plan.services],
    ['namespaces', plan.namespaces],
    ['nodes', plan.nodes],
    [`secrets in ${ns}`, plan.secrets],
    ...CONFIG_RESOURCES.map((r, i): [string, ReadMode] => [`${r.plural}.${r.group} in ${ns}`, plan.config[i]!]),
  ];
  for (const [what, m] of named) {
    if (m === 'list') log.info({ resource: what }, `may list but not watch ${what}: listing it every 30 s instead`);
    if (m === 'forbidden') {
      const consequence =
        what === 'services'
          ? 'no Service can be handled'
          : what === 'namespaces'
            ? 'IPAddressPool namespaceSelectors match no namespace'
            : 'treated as having no objects';
      log[what === 'services' ? 'error' : 'warn']({ resource: what }, `not allowed to list ${what}: ${consequence}`);
    }
  }
  return plan;
}
