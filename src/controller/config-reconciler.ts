// Config reconcile: parse every MetalLB config object (CRs of the namespace, oldest first, plus the legacy ConfigMap)
// as one config. A config with errors is rejected as a whole: the last good one stays in force, the config is marked
// stale, each error is logged and reported as a Warning event `InvalidConfiguration` on the object it concerns.
// A valid config whose pools differ from the current ones is handed to the allocator and every Service is reprocessed.
// The speaker uses the same reconciler with its own notion of "differs" (`relevant`) and a veto (`accept`).
import type { Config, Pool } from '../config/types.js';
import type { ClusterContext, ParseOptions, ParseResult } from '../config/index.js';
import { formatConfigError } from '../config/types.js';
import type { Logger } from '../log.js';
import type { KubeObject } from '../k8s/types.js';
import { errorText } from '../k8s/client.js';
import type { EventSink } from '../k8s/events.js';

export type ParseFn = (objects: readonly KubeObject[], ctx: ClusterContext, opts: ParseOptions) => ParseResult;

export interface ConfigSources {
  /** Every config object (CRs and the legacy ConfigMap), in the order handed to the parser. */
  configObjects(): KubeObject[];
  cluster(): ClusterContext;
}

export interface ConfigReconcilerDeps {
  namespace: string;
  parse: ParseFn;
  sources: ConfigSources;
  /** The controller's allocator gets the pools of every accepted config. */
  allocator?: { setPools(pools: readonly Pool[]): void };
  events: EventSink;
  log: Logger;
  metrics?: { configLoaded: { set(v: number): void }; configStale: { set(v: number): void } };
  /** An accepted config changed what matters (the pools, or `relevant`): converge every Service again. */
  onPoolsChanged(config: Config): void;
  /** The part of the config this process depends on; a new config equal in it is ignored. Default: the pools. */
  relevant?(config: Config): unknown;
  /**
   * A last say on a valid new config: a reason to refuse it (the speaker refuses a config that would orphan an
   * address it announces). A refused config leaves the previous one in force, marks it stale, and the reconcile
   * throws so the work queue retries it with backoff.
   */
  accept?(config: Config): string | undefined;
  /** Whether this instance may write (events); false on a standby. */
  canWrite?(): boolean;
  /** Every parse outcome (for the ConfigurationState object). */
  onResult?(valid: boolean, errors: string[]): void;
}

/** A canonical text of a value: object keys sorted, Sets/Maps as sorted arrays, bigints as text, functions dropped. */
export function stableKey(value: unknown): string {
  const seen = new WeakSet<object>();
  const norm = (v: unknown): unknown => {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'function' || v === undefined) return undefined;
    if (v === null || typeof v !== 'object') return v;
    if (seen.has(v)) return '[cycle]';
    seen.add(v);
    let out: unknown;
    if (v instanceof Set) out = { $set: [...v].map(norm).map((x) => JSON.stringify(x)).sort() };
    else if (v instanceof Map) out = { $map: [...v].map(([k, x]) => [JSON.stringify(norm(k)), norm(x)]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))) };
    else if (Array.isArray(v)) out = v.map(norm);
    else {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = norm((v as Record<string, unknown>)[k]);
        if (x !== undefined) o[k] = x;
      }
      out = o;
    }
    seen.delete(v);
    return out;
  };
  return JSON.stringify(norm(value));
}

export const objectRef = (o: KubeObject): string => `${o.kind ?? ''} ${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class ConfigReconciler {
  private loadedOnce = false;
  private stale = false;
  private poolsKey: string | undefined;
  private lastErrorsKey = '';
  private lastPools: readonly Pool[] = [];
  private lastConfig: Config | undefined;

  constructor(private readonly d: ConfigReconcilerDeps) {}

  /** A config has been accepted at least once. */
  get loaded(): boolean {
    return this.loadedOnce;
  }
  get isStale(): boolean {
    return this.stale;
  }
  get pools(): readonly Pool[] {
    return this.lastPools;
  }
  /** The config in force (the last accepted one). */
  get config(): Config | undefined {
    return this.lastConfig;
  }

  /** Makes the next reconcile report its errors again (e.g. after becoming leader). */
  forgetReported(): void {
    this.lastErrorsKey = '';
  }

  private lastWarningsKey = '[]';

  reconcile(): void {
    const { log, sources, namespace } = this.d;
    const objects = sources.configObjects();
    let result: ParseResult;
    try {
      result = this.d.parse(objects, sources.cluster(), { namespace });
    } catch (err) {
      result = { errors: [{ object: 'configuration', field: '', message: `internal error parsing the configuration: ${errorText(err)}` }] };
    }
    if (result.errors.length > 0 || !result.config) {
      const errors = result.errors.length > 0 ? result.errors : [{ object: 'configuration', field: '', message: 'parser returned no config' }];
      const texts = errors.map(formatConfigError);
      this.setStale(true);
      this.d.onResult?.(false, texts);
      const errorsKey = JSON.stringify(texts);
      if (errorsKey === this.lastErrorsKey) return; // already reported
      this.lastErrorsKey = errorsKey;
      const byRef = new Map<string, KubeObject>();
      for (const o of objects) {
        byRef.set(objectRef(o), o);
        byRef.set(`${o.kind ?? ''} ${o.metadata?.name ?? ''}`, o);
      }
      for (const [i, e] of errors.entries()) {
        const text = texts[i] ?? '';
        log.error({ object: e.object, field: e.field || undefined, error: e.message, keptPrevious: this.loadedOnce }, `invalid configuration rejected: ${text}`);
        const target = byRef.get(e.object) ?? findByName(objects, e.object);
        if (target && (this.d.canWrite?.() ?? true)) this.d.events.record(target, 'Warning', 'InvalidConfiguration', text);
      }
      return;
    }
    const config = result.config;
    const warnings = (result.warnings ?? []).map(formatConfigError);
    const warningsKey = JSON.stringify(warnings);
    if (warningsKey !== this.lastWarningsKey) {
      this.lastWarningsKey = warningsKey;
      for (const w of warnings) log.warn({ warning: w }, `configuration warning: ${w}`);
    }
    const key = stableKey(this.d.relevant ? this.d.relevant(config) : config.pools);
    if (key === this.poolsKey) {
      this.lastErrorsKey = '';
      this.setStale(false);
      this.d.onResult?.(true, []);
      log.debug({}, 'configuration unchanged');
      return;
    }
    const refusal = this.d.accept?.(config);
    if (refusal !== undefined) {
      this.setStale(true);
      this.d.onResult?.(false, [refusal]);
      if (refusal !== this.lastErrorsKey) log.error({ error: refusal, keptPrevious: this.loadedOnce }, `new configuration rejected: ${refusal}`);
      this.lastErrorsKey = refusal;
      throw new Error(`new configuration rejected: ${refusal}`);
    }
    this.lastErrorsKey = '';
    this.setStale(false);
    this.d.onResult?.(true, []);
    const first = !this.loadedOnce;
    this.loadedOnce = true;
    this.d.metrics?.configLoaded.set(1);
    this.poolsKey = key;
    this.lastPools = config.pools;
    this.lastConfig = config;
    this.d.allocator?.setPools(config.pools);
    log.info({ pools: config.pools.map((p) => p.name), first }, first ? 'configuration loaded' : 'configuration changed, reprocessing all services');
    this.d.onPoolsChanged(config);
  }

  private setStale(stale: boolean): void {
    this.stale = stale;
    this.d.metrics?.configStale.set(stale ? 1 : 0);
  }
}

/** Fallback lookup of an error's object text (e.g. `IPAddressPool prod`) among the objects. */
function findByName(objects: readonly KubeObject[], text: string): KubeObject | undefined {
  const [kind, ref] = text.split(' ', 2);
  if (!ref) return undefined;
  const name = ref.includes('/') ? ref.slice(ref.indexOf('/') + 1) : ref;
  return objects.find((o) => o.kind === kind && o.metadata?.name === name);
}
