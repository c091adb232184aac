// In-memory object storage: objects indexed by resource and namespace, a global resourceVersion counter,
// a bounded history of change events for watch resumption, and watcher fan-out. Pure: no HTTP, no validation.
// Stored objects are never mutated after they are stored; writers always store a new object.
import { isObj, type Obj } from './util.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: EventType;
  /** resource key `group/resource` */
  key: string;
  namespace: string;
  object: Obj;
  /** The object before a MODIFIED (for selector transitions). */
  prev?: Obj;
  /** Serialised watch lines, cached by apiVersion. */
  lines?: Map<string, string>;
}

export interface Watcher {
  key: string;
  /** Only events of this namespace (undefined: all). */
  namespace?: string;
  onEvent(ev: StoreEvent): void;
  /** The resource went away (CRD deleted): the watch should end. */
  onClose?(): void;
}

export interface Snapshot {
  resourceVersion: number;
  /** resource key → objects */
  objects: Record<string, Obj[]>;
  /** The most recent events, oldest first, to let watches resume across restarts. */
  events?: { rv: number; type: EventType; key: string; object: Obj }[];
}

const nsOf = (o: Obj): string => (isObj(o.metadata) && typeof o.metadata.namespace === 'string' ? o.metadata.namespace : '');
const nameOf = (o: Obj): string => (isObj(o.metadata) && typeof o.metadata.name === 'string' ? o.metadata.name : '');

export class Store {
  private rv: number;
  private readonly data = new Map<string, Map<string, Map<string, Obj>>>();
  private events: StoreEvent[] = [];
  private start = 0;
  /** Events with rv <= compactedRV are no longer available. */
  private compactedRV: number;
  private readonly watchers = new Map<string, Set<Watcher>>();
  /** Called after every change (persistence hooks in here). */
  onChange?: () => void;

  constructor(
    readonly historySize = 20000,
    initialRV = 1,
  ) {
    this.rv = initialRV;
    this.compactedRV = initialRV;
  }

  currentRV(): number {
    return this.rv;
  }

  oldestResumableRV(): number {
    return this.compactedRV;
  }

  get(key: string, namespace: string, name: string): Obj | undefined {
    return this.data.get(key)?.get(namespace)?.get(name);
  }

  /** Objects of a resource, in one namespace or all; sorted by namespace then name like etcd's key order. */
  list(key: string, namespace?: string): Obj[] {
    const byNs = this.data.get(key);
    if (!byNs) return [];
    const out: Obj[] = [];
    const nss = namespace !== undefined ? [namespace] : [...byNs.keys()].sort();
    for (const ns of nss) {
      const m = byNs.get(ns);
      if (!m) continue;
      const names = [...m.keys()].sort();
      for (const n of names) out.push(m.get(n)!);
    }
    return out;
  }

  count(key: string, namespace?: string): number {
    const byNs = this.data.get(key);
    if (!byNs) return 0;
    if (namespace !== undefined) return byNs.get(namespace)?.size ?? 0;
    let n = 0;
    for (const m of byNs.values()) n += m.size;
    return n;
  }

  keys(): string[] {
    return [...this.data.keys()];
  }

  /** Store `obj` (a new object owned by the store from now on) with the next resourceVersion. */
  put(key: string, obj: Obj, type: 'ADDED' | 'MODIFIED'): StoreEvent {
    const ns = nsOf(obj);
    const name = nameOf(obj);
    const rv = ++this.rv;
    (obj.metadata as Obj).resourceVersion = String(rv);
    let byNs = this.data.get(key);
    if (!byNs) this.data.set(key, (byNs = new Map()));
    let m = byNs.get(ns);
    if (!m) byNs.set(ns, (m = new Map()));
    const prev = m.get(name);
    m.set(name, obj);
    return this.record({ rv, type, key, namespace: ns, object: obj, ...(prev ? { prev } : {}) });
  }

  /** Remove an object; `finalState` is the object as last seen (it gets the deletion's resourceVersion). */
  remove(key: string, finalState: Obj): StoreEvent {
    const ns = nsOf(finalState);
    const name = nameOf(finalState);
    const rv = ++this.rv;
    (finalState.metadata as Obj).resourceVersion = String(rv);
    const byNs = this.data.get(key);
    const m = byNs?.get(ns);
    m?.delete(name);
    if (m && m.size === 0) byNs!.delete(ns);
    return this.record({ rv, type: 'DELETED', key, namespace: ns, object: finalState });
  }

  /** Drop a whole resource's storage (CRD removal), without events. */
  dropResource(key: string): void {
    this.data.delete(key);
    const ws = this.watchers.get(key);
    this.watchers.delete(key);
    if (ws) for (const w of ws) w.onClose?.();
  }

  private record(ev: StoreEvent): StoreEvent {
    this.events.push(ev);
    if (this.events.length - this.start > this.historySize) {
      this.compactedRV = this.events[this.start]!.rv;
      // drop the previous-object reference of evicted events promptly
      this.events[this.start] = undefined as unknown as StoreEvent;
      this.start++;
      if (this.start > 4096 && this.start > this.historySize / 2) {
        this.events = this.events.slice(this.start);
        this.start = 0;
      }
    }
    const ws = this.watchers.get(ev.key);
    if (ws) {
      for (const w of [...ws]) {
        if (w.namespace !== undefined && w.namespace !== ev.namespace) continue;
        try {
          w.onEvent(ev);
        } catch {
          // a failing watcher must not break the write path
        }
      }
    }
    this.onChange?.();
    return ev;
  }

  /** Events after `rv` (exclusive), or 'gone' when some of them are no longer retained. */
  eventsSince(rv: number, key?: string): StoreEvent[] | 'gone' {
    if (rv < this.compactedRV) return 'gone';
    let lo = this.start;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.events[mid]!.rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    const out: StoreEvent[] = [];
    for (let i = lo; i < this.events.length; i++) {
      const ev = this.events[i]!;
      if (key === undefined || ev.key === key) out.push(ev);
    }
    return out;
  }

  watch(w: Watcher): () => void {
    let ws = this.watchers.get(w.key);
    if (!ws) this.watchers.set(w.key, (ws = new Set()));
    ws.add(w);
    return () => {
      ws!.delete(w);
    };
  }

  watcherCount(): number {
    let n = 0;
    for (const s of this.watchers.values()) n += s.size;
    return n;
  }

  snapshot(maxEvents = 2000): Snapshot {
    const objects: Record<string, Obj[]> = {};
    for (const key of this.data.keys()) objects[key] = this.list(key);
    const evs = this.events.slice(Math.max(this.start, this.events.length - maxEvents));
    return {
      resourceVersion: this.rv,
      objects,
      events: evs.map((e) => ({ rv: e.rv, type: e.type, key: e.key, object: e.object })),
    };
  }

  /** Replace all contents with a snapshot (startup only). */
  load(s: Snapshot): void {
    this.data.clear();
    this.events = [];
    this.start = 0;
    this.rv = s.resourceVersion;
    for (const [key, objs] of Object.entries(s.objects)) {
      let byNs = this.data.get(key);
      if (!byNs) this.data.set(key, (byNs = new Map()));
      for (const o of objs) {
        const ns = nsOf(o);
        let m = byNs.get(ns);
        if (!m) byNs.set(ns, (m = new Map()));
        m.set(nameOf(o), o);
      }
    }
    const evs = (s.events ?? []).filter((e) => e.rv <= s.resourceVersion);
    evs.sort((a, b) => a.rv - b.rv);
    // Events are resumable from just before the first retained one; with none, from the saved counter.
    this.compactedRV = evs.length > 0 ? evs[0]!.rv - 1 : s.resourceVersion;
    for (const e of evs) this.events.push({ rv: e.rv, type: e.type, key: e.key, namespace: nsOf(e.object), object: e.object });
  }
}
