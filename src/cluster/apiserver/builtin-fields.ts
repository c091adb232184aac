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
    // Only the generated models (the same 717 classes the package's index exports), not its API clients: a fifth of
    // the code to load before the API server listens (0.1 instead of 0.4 CPU s from the CLI bundle).
    models = (await import('@kubernetes/client-node/dist/gen/models/all.js')) as unknown as Record<string, unknown>;
  } catch {
    models = {};
  }
}

const isModel = (v: unknown): v is Model => typeof v === 'function' && typeof (v as { getAttributeTypeMap?: unknown }).getAttributeTypeMap === 'function';

function model(name: string): Model | undefined {
  const m = models?.[name];
  return isModel(m) ? m : undefined;
}

/** A generated model by name (`V1PodSpec`), once loadBuiltinModels has run. */
export const builtinModel = (name: string): Model | undefined => model(name);

/** The model name of a built-in kind, e.g. V1Service, CoreV1Event, EventsV1Event, V2HorizontalPodAutoscaler. */
export function builtinModelNameForKind(group: string, kind: string, version = 'v1'): string | undefined {
  const v = `V${version.slice(1)}`;
  const candidates = group === '' ? [`CoreV1${kind}`, `V1${kind}`] : group === 'events.k8s.io' ? [`EventsV1${kind}`] : [`${v}${kind}`];
  return candidates.find((c) => model(c) !== undefined);
}

function modelForKind(group: string, kind: string, version = 'v1'): Model | undefined {
  const name = builtinModelNameForKind(group, kind, version);
  return name ? model(name) : undefined;
}

const MAP_RE = /^\{ \[key: string\]: (.+); \}$/;
const ARRAY_RE = /^Array<(.+)>$/;

/** What a walk finds: unknown field paths, and values of the wrong JSON shape (which decoding into Go types refuses). */
export interface BuiltinFieldProblems {
  unknown: string[];
  /** e.g. `spec.clusterIPs: got string, want array` */
  wrongType: string[];
}

const jsonType = (v: unknown): string => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);

function walk(value: unknown, type: string, path: string, out: BuiltinFieldProblems, prune: boolean): void {
  if (value === null || value === undefined) return;
  const arrM = ARRAY_RE.exec(type);
  if (arrM) {
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, arrM[1]!, `${path}[${i}]`, out, prune));
    else out.wrongType.push(`${path}: got ${jsonType(value)}, want array`);
    return;
  }
  const mapM = MAP_RE.exec(type);
  if (mapM) {
    if (isObj(value)) for (const [k, v] of Object.entries(value)) walk(v, mapM[1]!, `${path}.${k}`, out, prune);
    else out.wrongType.push(`${path}: got ${jsonType(value)}, want object`);
    return;
  }
  const m = model(type);
  if (!m) return;
  if (!isObj(value)) {
    out.wrongType.push(`${path}: got ${jsonType(value)}, want object`);
    return;
  }
  walkModel(value, m, path, out, prune);
}

function walkModel(value: Obj, m: Model, path: string, out: BuiltinFieldProblems, prune: boolean): void {
  const attrs = m.getAttributeTypeMap();
  for (const k of Object.keys(value)) {
    const a = attrs.find((x) => x.baseName === k);
    const p = path ? `${path}.${k}` : k;
    if (!a) {
      out.unknown.push(p);
      if (prune) delete value[k];
      continue;
    }
    walk(value[k], a.type, p, out, prune);
  }
}

/**
 * Paths of fields a built-in object has that its type does not (`spec.prots`, `spec.ports[0].nme`), and of
 * lists / objects given as something else (`spec.clusterIPs: "x"`); with `prune`, unknown fields are removed
 * (like decoding into the Go types does). Unknown kinds: nothing found.
 */
export function builtinFieldProblems(group: string, kind: string, o: Obj, prune: boolean, version = 'v1'): BuiltinFieldProblems {
  const out: BuiltinFieldProblems = { unknown: [], wrongType: [] };
  const m = modelForKind(group, kind, version);
  if (m) walkModel(o, m, '', out, prune);
  return out;
}
