// Public entry of the configuration model. STUB: the config work replaces the bodies; keep the signatures.
import type { ConfigMap, KubeObject, Namespace, Node, Secret } from '../k8s/types.js';
import type { Config, ConfigError } from './types.js';

export * from './types.js';

/** What the parse needs from the cluster besides the config objects themselves. */
export interface ClusterContext {
  namespaces: readonly Namespace[];
  nodes: readonly Node[];
  secrets: readonly Secret[];
}

export interface ParseOptions {
  /** MetalLB's namespace; objects without a namespace are taken to be in it. Default `metallb-system`. */
  namespace?: string;
}

export interface ParseResult {
  /** Present only when `errors` is empty. */
  config?: Config;
  errors: ConfigError[];
}

/** Parses and validates every MetalLB config object (CRDs of any supported version and the legacy ConfigMap) as one config. */
export function parseConfig(objects: readonly KubeObject[], ctx: ClusterContext, opts: ParseOptions = {}): ParseResult {
  void objects; void ctx; void opts;
  throw new Error('parseConfig: not implemented yet');
}

/** The equivalent CRDs of a legacy ConfigMap (MetalLB's configmaptocrs). */
export function convertLegacyConfigMap(cm: ConfigMap): { objects: KubeObject[]; errors: ConfigError[] } {
  void cm;
  throw new Error('convertLegacyConfigMap: not implemented yet');
}
