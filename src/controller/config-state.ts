// ConfigurationState (MetalLB's status-only CRD): `status.result` Valid/Invalid, `errorSummary`, and one condition
// (reason Reconciled / ConfigurationError). The controller's object is `controller` with `poolReconcilerValid`; each
// speaker's is `speaker-<node>` with `configReconcilerValid`. Written only when it changes, through the status
// subresource; skipped quietly while the CRD is not installed, and for good when RBAC forbids it (older MetalLB
// roles do not grant it).
import type { Logger } from '../log.js';
import { ApiError, errorText, isAlreadyExists, isNotFound, type KubeClient } from '../k8s/client.js';
import type { FeatureSwitch } from '../k8s/features.js';
import { collectionPath, objectPath, type Resource } from '../k8s/resources.js';

export const CONFIGURATION_STATES: Resource = { group: 'metallb.io', version: 'v1beta1', plural: 'configurationstates', kind: 'ConfigurationState', namespaced: true };

export interface ConfigStateDeps {
  client: KubeClient;
  namespace: string;
  log: Logger;
  canWrite(): boolean;
  /** Object name; MetalLB's controller uses `controller`, its speakers `speaker-<node>`. */
  name?: string;
  /** Labels of a created object; default the controller's (`metallb.io/component-type: controller`). */
  labels?: Record<string, string>;
  /** Condition type; default `poolReconcilerValid` (the controller's). */
  conditionType?: string;
  /** The `configuration-state` feature: nothing is written while it is off; a refused write turns it off. */
  feature?: FeatureSwitch;
}

export class ConfigStateWriter {
  private desired: { valid: boolean; errors: string[] } | undefined;
  private written = '';
  private transition = new Date().toISOString();
  private lastValid: boolean | undefined;
  private busy = false;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private forbidden = false;

  constructor(private readonly d: ConfigStateDeps) {}

  set(valid: boolean, errors: string[]): void {
    if (this.lastValid !== valid) {
      this.lastValid = valid;
      this.transition = new Date().toISOString();
    }
    this.desired = { valid, errors };
    void this.flush();
  }

  /** Writes again even if unchanged (e.g. after becoming leader). */
  resync(): void {
    this.written = '';
    void this.flush();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private async flush(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    if (this.stopped || this.forbidden || !this.desired || !this.d.canWrite()) return;
    if (this.d.feature && !this.d.feature.enabled) return;
    const { valid, errors } = this.desired;
    const status = {
      result: valid ? 'Valid' : 'Invalid',
      errorSummary: errors.join('\n'),
      conditions: [
        {
          type: this.d.conditionType ?? 'poolReconcilerValid',
          status: valid ? 'True' : 'False',
          reason: valid ? 'Reconciled' : 'ConfigurationError',
          message: valid ? '' : errors.join('\n').slice(0, 32_000),
          lastTransitionTime: this.transition.replace(/\.\d{3}Z$/, 'Z'),
        },
      ],
    };
    const text = JSON.stringify(status);
    if (text === this.written) return;
    this.busy = true;
    const name = this.d.name ?? 'controller';
    const ns = this.d.namespace;
    try {
      try {
        await this.d.client.mergePatch(objectPath(CONFIGURATION_STATES, ns, name, 'status'), { status });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // No object yet (or no CRD): create it, then set the status.
        try {
          await this.d.client.post(collectionPath(CONFIGURATION_STATES, ns), {
            apiVersion: 'metallb.io/v1beta1',
            kind: 'ConfigurationState',
            metadata: { name, namespace: ns, labels: this.d.labels ?? { 'metallb.io/component-type': 'controller' } },
            spec: {},
          });
        } catch (e) {
          if (isNotFound(e)) {
            this.d.log.debug({}, 'ConfigurationState CRD not installed; not reporting the config state there');
            return;
          }
          if (!isAlreadyExists(e)) throw e;
        }
        await this.d.client.mergePatch(objectPath(CONFIGURATION_STATES, ns, name, 'status'), { status });
      }
      this.written = text;
    } catch (err) {
      if (this.d.feature?.offIfForbidden(err)) return;
      if (err instanceof ApiError && err.status === 403) {
        this.forbidden = true;
        this.d.log.warn({ object: `ConfigurationState ${ns}/${name}`, err: errorText(err) }, 'not allowed to write the ConfigurationState; not reporting the config state there');
        return;
      }
      this.d.log.warn({ object: `ConfigurationState ${ns}/${name}`, err: errorText(err) }, 'could not write the configuration state, retrying in 5s');
      if (!this.retryTimer && !this.stopped) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          void this.flush();
        }, 5000);
      }
    } finally {
      this.busy = false;
    }
    if (this.again) {
      this.again = false;
      void this.flush();
    }
  }
}
