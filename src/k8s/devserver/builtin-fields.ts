// Unknown-field detection for built-in types (server-side field validation: fieldValidation=Strict|Warn), using
// the attribute maps of @kubernetes/client-node's generated models as the list of known fields.
import { isObj, type Obj } from './util.js';

interface Attr {
  baseName: string;
  type: string;
}
interface Model {
  getAttributeTypeMap(): Attr[];
}

let models: Record<string, unknown> | undefined;

/** Load the models once (the server awaits this before it listens). */
export async function loadBuiltinModels(): Promise<void> {
  if (models) return;
  try {
    models = (await import('@kubernetes/client-node')) as unknown as Record<string, unknown>;
  } catch {
    models = {};
  }
}

const isModel = (v: unknown): v is Model => typeof v === 'function' && typeof (v as { getAttributeTypeMap?: unknown }).getAttributeTypeMap === 'function';

function model(name: string): Model | undefined {
  const m = models?.[name];
  return isModel(m) ? m : undefined;
}

/** The model of a built-in kind, e.g. V1Service, CoreV1Event, EventsV1Event. */
function modelForKind(group: string, kind: string): Model | undefined {
  const candidates = group === '' ? [`CoreV1${kind}`, `V1${kind}`] : group === 'events.k8s.io' ? [`EventsV1${kind}`] : [`V1${kind}`];
  for (const c of candidates) {
    const m = model(c);
    if (m) return m;
  }
  return undefined;
}

const MAP_RE = /^\{ \[key: string\]: (.+); \}$/;
const ARRAY_RE = /^Array<(.+)>$/;

function walk(value: unknown, type: string, path: string, out: string[], prune: boolean): void {
  if (value === null || value === undefined) return;
  const arrM = ARRAY_RE.exec(type);
  if (arrM) {
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, arrM[1]!, `${path}[${i}]`, out, prune));
    return;
  }
  const mapM = MAP_RE.exec(type);
  if (mapM) {
    if (isObj(value)) for (const [k, v] of Object.entries(value)) walk(v, mapM[1]!, `${path}.${k}`, out, prune);
    return;
  }
  const m = model(type);
  if (!m || !isObj(value)) return;
  const attrs = m.getAttributeTypeMap();
  for (const k of Object.keys(value)) {
    const a = attrs.find((x) => x.baseName === k);
    const p = path ? `${path}.${k}` : k;
    if (!a) {
      out.push(p);
      if (prune) delete (value as Obj)[k];
      continue;
    }
    walk(value[k], a.type, p, out, prune);
  }
}

/**
 * Paths of fields a built-in object has that its type does not (`spec.prots`, `spec.ports[0].nme`);
 * with `prune`, they are removed (like decoding into the Go types does). Unknown kinds: [].
 */
export function unknownBuiltinFields(group: string, kind: string, o: Obj, prune: boolean): string[] {
  const m = modelForKind(group, kind);
  if (!m) return [];
  const out: string[] = [];
  const attrs = m.getAttributeTypeMap();
  for (const k of Object.keys(o)) {
    const a = attrs.find((x) => x.baseName === k);
    if (!a) {
      out.push(k);
      if (prune) delete o[k];
      continue;
    }
    walk(o[k], a.type, k, out, prune);
  }
  return out;
}
