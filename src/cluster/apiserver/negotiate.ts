// Content negotiation: Accept header parsing and request body decoding.
import { parse as parseYaml } from 'yaml';
import { badRequest, notAcceptable, unsupportedMediaType } from './errors.js';
import type { PatchType } from './api.js';
import { decodeProtobuf, PROTOBUF } from './protobuf.js';

export interface MediaType {
  type: string;
  params: Record<string, string>;
}

export function parseMediaTypes(header: string | undefined): MediaType[] {
  if (!header) return [];
  return header
    .split(',')
    .map((part) => {
      const [t, ...ps] = part.split(';').map((s) => s.trim());
      const params: Record<string, string> = {};
      for (const p of ps) {
        const i = p.indexOf('=');
        if (i > 0) params[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim().replace(/^"|"$/g, '');
      }
      return { type: (t ?? '').toLowerCase(), params };
    })
    .filter((m) => m.type !== '');
}

export type Output =
  | { kind: 'json' }
  | { kind: 'yaml' }
  | { kind: 'table'; version: string }
  | { kind: 'partial'; version: string }
  | { kind: 'discovery'; version: string };

const isJsonish = (t: string): boolean => t === 'application/json' || t === '*/*' || t === 'application/*';

/**
 * Pick the response representation. `allowDiscovery`: the endpoint can answer with aggregated discovery.
 * Throws 406 when nothing acceptable is offered.
 */
export function chooseOutput(accept: string | undefined, allowDiscovery = false): Output {
  const types = parseMediaTypes(accept);
  if (types.length === 0) return { kind: 'json' };
  for (const m of types) {
    const as = m.params.as;
    if (as !== undefined) {
      if (m.type !== 'application/json') continue;
      if (as === 'Table' && m.params.g === 'meta.k8s.io' && (m.params.v === 'v1' || m.params.v === 'v1beta1')) return { kind: 'table', version: m.params.v };
      if ((as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') && m.params.g === 'meta.k8s.io' && (m.params.v === 'v1' || m.params.v === 'v1beta1'))
        return { kind: 'partial', version: m.params.v };
      if (as === 'APIGroupDiscoveryList' && allowDiscovery && m.params.g === 'apidiscovery.k8s.io' && (m.params.v === 'v2' || m.params.v === 'v2beta1'))
        return { kind: 'discovery', version: m.params.v };
      continue;
    }
    if (isJsonish(m.type)) return { kind: 'json' };
    if (m.type === 'application/yaml') return { kind: 'yaml' };
  }
  throw notAcceptable();
}

export const PATCH_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

/** Deeper documents would overflow the stack of the recursive copies, merges and comparisons (Go allows 10000). */
const MAX_DEPTH = 1000;

/**
 * Checks a decoded body (iteratively): not nested deeper than MAX_DEPTH, and no `__proto__` key, which would
 * become an object's prototype as soon as the body is copied or merged (fields read through it, e.g. an object
 * stored without a name of its own).
 */
function checkDecoded(body: unknown): void {
  const stack: [unknown, number][] = [[body, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_DEPTH) throw badRequest(`the request body is nested deeper than ${MAX_DEPTH} levels`);
    if (!Array.isArray(v) && Object.hasOwn(v, '__proto__')) throw badRequest('the request body has a "__proto__" key, which this server does not support');
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (typeof x === 'object' && x !== null) stack.push([x, depth + 1]);
  }
}

/** Decode a request body of the given content type (JSON, or YAML for apply patches and application/yaml). */
export function decodeBody(raw: Buffer, contentType: string | undefined, forPatch: boolean): unknown {
  const body = decodeText(raw, contentType, forPatch);
  checkDecoded(body);
  return body;
}

function decodeText(raw: Buffer, contentType: string | undefined, forPatch: boolean): unknown {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const text = raw.toString('utf8');
  if (forPatch) {
    if (!(ct in PATCH_TYPES))
      throw unsupportedMediaType(ct, Object.keys(PATCH_TYPES));
  } else if (ct === PROTOBUF) {
    return decodeProtobuf(raw);
  } else if (ct !== '' && ct !== 'application/json' && ct !== 'application/yaml' && ct !== '*/*') {
    throw unsupportedMediaType(ct, ['application/json', 'application/yaml']);
  }
  if (text.trim() === '') throw badRequest('the request body is empty; an object was expected');
  if (ct === 'application/yaml' || ct === 'application/apply-patch+yaml') {
    try {
      return parseYaml(text, { strict: true, uniqueKeys: false, prettyErrors: false }) as unknown;
    } catch (e) {
      throw badRequest(`error decoding YAML request body: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw badRequest(`error decoding JSON request body: ${(e as Error).message}`);
  }
}
