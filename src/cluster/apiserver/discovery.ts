// Discovery documents (legacy and aggregated v2/v2beta1) and the minimal OpenAPI v3 kubectl relies on.
import { createHash } from 'node:crypto';
import { apiVersionOf, type Registry, type ResourceType, type VersionInfo } from './registry.js';
import type { Obj } from './util.js';
import { builtinComponentSchemas } from './builtin-openapi.js';

export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-metallb-dev',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.23.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function apiResource(rt: ResourceType, v: VersionInfo): Obj[] {
  const out: Obj[] = [
    {
      name: rt.resource,
      singularName: rt.singular,
      namespaced: rt.namespaced,
      kind: rt.kind,
      verbs: rt.verbs,
      ...(rt.shortNames.length ? { shortNames: rt.shortNames } : {}),
      ...(rt.categories.length ? { categories: rt.categories } : {}),
      storageVersionHash: createHash('sha256').update(`${rt.group}/${rt.storageVersion}/${rt.kind}`).digest('base64').slice(0, 11),
    },
  ];
  if (v.statusSubresource) out.push({ name: `${rt.resource}/status`, singularName: '', namespaced: rt.namespaced, kind: rt.kind, verbs: ['get', 'patch', 'update'] });
  if (v.scale) out.push({ name: `${rt.resource}/scale`, singularName: '', namespaced: rt.namespaced, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
  for (const s of v.subresources ?? [])
    out.push({ name: `${rt.resource}/${s.name}`, singularName: '', namespaced: rt.namespaced, ...(s.group !== undefined ? { group: s.group, version: s.version } : {}), kind: s.kind, verbs: s.verbs });
  return out;
}

export function apiVersions(serverAddress: string): Obj {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(group: string, versions: string[]): Obj {
  const vs = versions.map((v) => ({ groupVersion: apiVersionOf(group, v), version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0] };
}

export function apiGroupList(reg: Registry): Obj {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: reg
      .groups()
      .filter((g) => g.group !== '')
      .map((g) => groupDoc(g.group, g.versions.map((v) => v.version))),
  };
}

export function apiGroup(reg: Registry, group: string): Obj | undefined {
  const g = reg.groups().find((x) => x.group === group);
  if (!g || group === '') return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(group, g.versions.map((v) => v.version)) };
}

export function apiResourceList(reg: Registry, group: string, version: string): Obj | undefined {
  const g = reg.groups().find((x) => x.group === group);
  const v = g?.versions.find((x) => x.version === version);
  if (!v) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: apiVersionOf(group, version),
    resources: v.resources.flatMap(({ rt, v: vi }) => apiResource(rt, vi)),
  };
}

/** apidiscovery.k8s.io APIGroupDiscoveryList for `/api` (legacy: true) or `/apis`. */
export function aggregatedDiscovery(reg: Registry, legacy: boolean, apiVersion: string): Obj {
  const items = reg
    .groups()
    .filter((g) => (legacy ? g.group === '' : g.group !== ''))
    .map((g) => ({
      metadata: { name: g.group, creationTimestamp: null },
      versions: g.versions.map((v) => ({
        version: v.version,
        resources: v.resources.map(({ rt, v: vi }) => ({
          resource: rt.resource,
          responseKind: { group: rt.group, version: v.version, kind: rt.kind },
          scope: rt.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: rt.singular,
          verbs: rt.verbs,
          ...(rt.shortNames.length ? { shortNames: rt.shortNames } : {}),
          ...(rt.categories.length ? { categories: rt.categories } : {}),
          ...(vi.statusSubresource || vi.scale || vi.subresources?.length
            ? {
                subresources: [
                  ...(vi.statusSubresource ? [{ subresource: 'status', responseKind: { group: rt.group, version: v.version, kind: rt.kind }, verbs: ['get', 'patch', 'update'] }] : []),
                  ...(vi.scale ? [{ subresource: 'scale', responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] }] : []),
                  ...(vi.subresources ?? []).map((s) => ({
                    subresource: s.name,
                    responseKind: { group: s.group ?? rt.group, version: s.version ?? v.version, kind: s.kind },
                    verbs: s.verbs,
                  })),
                ],
              }
            : {}),
        })),
        freshness: 'Current',
      })),
    }));
  return { kind: 'APIGroupDiscoveryList', apiVersion, metadata: {}, items };
}

// ---- OpenAPI v3 ----
// kubectl uses it to learn that the server supports the `fieldValidation` query parameter (server-side
// validation; kubectl then skips client-side schema validation) and for `kubectl explain`. The PATCH operations do
// not list strategic merge patch, so kubectl computes `apply` patches from its compiled-in types, not from these
// schemas (which carry no patch strategies).

const gvPath = (group: string, version: string): string => (group ? `apis/${group}/${version}` : `api/${version}`);

export function openapiV3Doc(reg: Registry, group: string, version: string): Obj | undefined {
  const g = reg.groups().find((x) => x.group === group);
  const v = g?.versions.find((x) => x.version === version);
  if (!v) return undefined;
  const paths: Obj = {};
  const param = (name: string, where = 'query'): Obj => ({ name, in: where, schema: { type: 'string', uniqueItems: true } });
  const resp = { '200': { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } } };
  for (const { rt } of v.resources) {
    const gvk = { group: rt.group, version, kind: rt.kind };
    const prefix = `/${gvPath(group, version)}${rt.namespaced ? '/namespaces/{namespace}' : ''}/${rt.resource}`;
    const pathParams = [param('name', 'path'), ...(rt.namespaced ? [param('namespace', 'path')] : [])];
    const patchTypes = ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml'];
    const body = (types: string[]): Obj => ({ content: Object.fromEntries(types.map((t) => [t, { schema: { type: 'object' } }])), required: true });
    const op = (action: string, extra: Obj = {}): Obj => ({
      operationId: `${action}${rt.kind}`,
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
      responses: resp,
      ...extra,
    });
    paths[prefix] = {
      get: op('list', { parameters: [param('labelSelector'), param('fieldSelector')] }),
      post: op('post', { parameters: [param('dryRun'), param('fieldManager'), param('fieldValidation')], requestBody: body(['application/json']) }),
      parameters: rt.namespaced ? [param('namespace', 'path')] : [],
    };
    paths[`${prefix}/{name}`] = {
      get: op('get'),
      put: op('put', { parameters: [param('dryRun'), param('fieldManager'), param('fieldValidation')], requestBody: body(['application/json']) }),
      patch: op('patch', { parameters: [param('dryRun'), param('fieldManager'), param('fieldValidation'), param('force')], requestBody: body(patchTypes) }),
      delete: op('delete'),
      parameters: pathParams,
    };
  }
  // built-in kinds from client-node's models, custom resources from their CRD schema: `kubectl explain` works for both
  const builtinKinds = v.resources.filter(({ rt }) => rt.builtin && !rt.crd && !rt.virtual).map(({ rt }) => rt.kind);
  const schemas: Obj = builtinComponentSchemas(group, version, builtinKinds);
  for (const { rt, v: vi } of v.resources) {
    if (!rt.crd || !vi.schema) continue;
    const id = `${rt.group.split('.').reverse().join('.')}.${version}.${rt.kind}`;
    schemas[id] = { ...vi.schema, 'x-kubernetes-group-version-kind': [{ group: rt.group, version, kind: rt.kind }] };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion },
    paths,
    components: { schemas },
  };
}

export function openapiV3Root(reg: Registry): Obj {
  const paths: Obj = {};
  for (const g of reg.groups()) {
    for (const v of g.versions) {
      const p = gvPath(g.group, v.version);
      const hash = createHash('sha256')
        .update(JSON.stringify(v.resources.map(({ rt }) => [rt.resource, rt.kind, rt.namespaced])))
        .digest('hex')
        .slice(0, 32)
        .toUpperCase();
      paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
    }
  }
  return { paths };
}

// ---- OpenAPI v2 ----
// An empty but valid document: kubectl's client-side validation (used for kinds the server does not describe
// in OpenAPI v3, e.g. a custom resource whose CRD is in the same file) skips kinds it does not find.

export function openapiV2Json(): Obj {
  return { swagger: '2.0', info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion }, paths: {}, definitions: {} };
}

function pbString(field: number, s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([(field << 3) | 2, b.length]), b]);
}

/** The same document as gnostic openapi_v2.Document protobuf (swagger = 1, info = 2 {title = 1, version = 2}). */
export function openapiV2Protobuf(): Buffer {
  const info = Buffer.concat([pbString(1, 'Kubernetes'), pbString(2, SERVER_VERSION.gitVersion)]);
  return Buffer.concat([pbString(1, '2.0'), Buffer.from([(2 << 3) | 2, info.length]), info]);
}
