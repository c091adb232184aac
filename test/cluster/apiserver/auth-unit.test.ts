// Pure parts of authentication and authorization: request attributes, RBAC rule matching, the token file, query
// parameter parsing, service-account token verification.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { requestInfo } from '../../../src/cluster/apiserver/auth/request-info.js';
import { RbacAuthorizer, ruleAllows, uncovered, type PolicyRule } from '../../../src/cluster/apiserver/auth/rbac.js';
import { forbiddenError } from '../../../src/cluster/apiserver/auth/authz.js';
import { parseTokenFile, TokenFileError } from '../../../src/cluster/apiserver/auth/token-file.js';
import { InvalidTokenError, ServiceAccountTokens } from '../../../src/cluster/apiserver/auth/sa-tokens.js';
import { bootstrapClusterRoleBindings, bootstrapClusterRoles } from '../../../src/cluster/apiserver/auth/bootstrap-policy.js';
import { aggregatedRules, ensureBootstrapPolicy, RBAC_KEYS } from '../../../src/cluster/apiserver/auth/rbac-store.js';
import { Store } from '../../../src/cluster/apiserver/store.js';
import { parseGoInt64, queryBool } from '../../../src/cluster/apiserver/params.js';
import { ApiError } from '../../../src/cluster/apiserver/errors.js';
import type { Obj } from '../../../src/cluster/apiserver/util.js';

const q = (s = ''): URLSearchParams => new URLSearchParams(s);

test('requestInfo: verbs, namespaces, subresources, non-resource paths, names from metadata.name field selectors', () => {
  const cases: [string, string, string, Partial<ReturnType<typeof requestInfo>>][] = [
    ['GET', '/api/v1/namespaces/default/pods', '', { resourceRequest: true, verb: 'list', resource: 'pods', namespace: 'default', name: '' }],
    ['GET', '/api/v1/namespaces/default/pods', 'watch=True', { verb: 'watch' }],
    ['GET', '/api/v1/namespaces/default/pods', 'watch=0', { verb: 'list' }],
    ['GET', '/api/v1/watch/namespaces/default/pods', '', { verb: 'watch', resource: 'pods', namespace: 'default' }],
    ['GET', '/api/v1/namespaces/default/pods/p1/log', '', { verb: 'get', resource: 'pods', name: 'p1', subresource: 'log' }],
    ['PUT', '/api/v1/namespaces/ns/services/s/status', '', { verb: 'update', resource: 'services', subresource: 'status', name: 's', namespace: 'ns' }],
    ['DELETE', '/apis/apps/v1/namespaces/ns/deployments', '', { verb: 'deletecollection', apiGroup: 'apps', apiVersion: 'v1', resource: 'deployments' }],
    ['DELETE', '/apis/apps/v1/namespaces/ns/deployments/d', '', { verb: 'delete', name: 'd' }],
    ['PATCH', '/apis/apps/v1/namespaces/ns/deployments/d/scale', '', { verb: 'patch', subresource: 'scale' }],
    ['POST', '/api/v1/namespaces/ns/serviceaccounts/sa/token', '', { verb: 'create', resource: 'serviceaccounts', subresource: 'token', name: 'sa' }],
    // a namespace object is in its own namespace
    ['GET', '/api/v1/namespaces/kube-system', '', { verb: 'get', resource: 'namespaces', namespace: 'kube-system', name: 'kube-system' }],
    ['PUT', '/api/v1/namespaces/x/finalize', '', { verb: 'update', resource: 'namespaces', namespace: 'x', name: 'x', subresource: 'finalize' }],
    ['GET', '/api/v1/nodes', '', { verb: 'list', resource: 'nodes', namespace: '' }],
    ['GET', '/api/v1/namespaces/metallb-system/secrets', 'fieldSelector=metadata.name%3Dmemberlist', { verb: 'list', name: 'memberlist' }],
    ['GET', '/api/v1/namespaces/metallb-system/secrets', 'fieldSelector=metadata.name%21%3Dmemberlist', { verb: 'list', name: '' }],
    ['GET', '/api', '', { resourceRequest: false, verb: 'get', path: '/api' }],
    ['GET', '/api/v1', '', { resourceRequest: false }],
    ['GET', '/apis/apps/v1', '', { resourceRequest: false }],
    ['GET', '/version', '', { resourceRequest: false, path: '/version' }],
    ['POST', '/healthz', '', { resourceRequest: false, verb: 'post' }],
  ];
  for (const [method, path, query, want] of cases) {
    const got = requestInfo(method, path, q(query));
    for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof typeof got], v, `${method} ${path}?${query}: ${k}`);
  }
});

test('query booleans as kube-apiserver converts them: only absent, 0 and false (any case) are false', () => {
  for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True', 'yes', '']) assert.equal(queryBool(q(`watch=${v}`), 'watch'), true, v);
  for (const v of ['0', 'false', 'False', 'FALSE']) assert.equal(queryBool(q(`watch=${v}`), 'watch'), false, v);
  assert.equal(queryBool(q(''), 'watch'), false);
  assert.equal(parseGoInt64('-12'), -12);
  assert.throws(() => parseGoInt64('1.5'), (e: unknown) => e instanceof ApiError && e.code === 400 && e.message === 'strconv.ParseInt: parsing "1.5": invalid syntax');
  assert.throws(() => parseGoInt64('99999999999999999999'), /value out of range/);
});

const rule = (verbs: string[], apiGroups: string[], resources: string[], resourceNames?: string[]): PolicyRule => ({ verbs, apiGroups, resources, ...(resourceNames ? { resourceNames } : {}) });
const attrs = (verb: string, resource: string, extra: Partial<ReturnType<typeof requestInfo>> = {}) => ({
  resourceRequest: true,
  path: '',
  verb,
  apiGroup: '',
  apiVersion: 'v1',
  resource,
  subresource: '',
  namespace: 'default',
  name: '',
  ...extra,
});

test('RBAC rule matching: verbs and *, groups, subresources and */sub, resourceNames, non-resource URLs', () => {
  assert.ok(ruleAllows(attrs('get', 'pods'), rule(['get'], [''], ['pods'])));
  assert.ok(!ruleAllows(attrs('get', 'pods', { subresource: 'log' }), rule(['get'], [''], ['pods'])));
  assert.ok(ruleAllows(attrs('get', 'pods', { subresource: 'log' }), rule(['get'], [''], ['pods/log'])));
  assert.ok(ruleAllows(attrs('update', 'deployments', { apiGroup: 'apps', subresource: 'scale' }), rule(['update'], ['apps'], ['*/scale'])));
  assert.ok(ruleAllows(attrs('update', 'deployments', { apiGroup: 'apps', subresource: 'scale' }), rule(['*'], ['*'], ['*'])));
  assert.ok(!ruleAllows(attrs('patch', 'services', { subresource: 'status' }), rule(['update'], [''], ['services/status'])));
  assert.ok(!ruleAllows(attrs('get', 'pods', { apiGroup: 'apps' }), rule(['get'], [''], ['pods'])));
  assert.ok(ruleAllows(attrs('list', 'secrets', { name: 'memberlist' }), rule(['list'], [''], ['secrets'], ['memberlist'])));
  assert.ok(!ruleAllows(attrs('list', 'secrets'), rule(['list'], [''], ['secrets'], ['memberlist'])));
  assert.ok(!ruleAllows(attrs('create', 'secrets'), rule(['create'], [''], ['secrets'], ['memberlist'])));
  const nr = { ...attrs('get', ''), resourceRequest: false, path: '/healthz/etcd' };
  assert.ok(ruleAllows(nr, { verbs: ['get'], nonResourceURLs: ['/healthz/*'] }));
  assert.ok(!ruleAllows(nr, { verbs: ['get'], nonResourceURLs: ['/healthz'] }));
  assert.ok(ruleAllows(nr, { verbs: ['get'], nonResourceURLs: ['*'] }));
});

test('RBAC authorizer: bindings, ServiceAccount subjects, RoleBindings to ClusterRoles, missing roles in the reason', () => {
  const objs: Record<string, Obj[]> = {
    crb: [
      { metadata: { name: 'ctl' }, roleRef: { kind: 'ClusterRole', name: 'ctl' }, subjects: [{ kind: 'ServiceAccount', name: 'controller', namespace: 'metallb-system' }] },
      { metadata: { name: 'dangling' }, roleRef: { kind: 'ClusterRole', name: 'nope' }, subjects: [{ kind: 'Group', name: 'system:serviceaccounts' }] },
    ],
    rb: [{ metadata: { name: 'pl', namespace: 'metallb-system' }, roleRef: { kind: 'Role', name: 'pod-lister' }, subjects: [{ kind: 'ServiceAccount', name: 'speaker' }] }],
  };
  const roles: Record<string, Obj> = {
    ctl: { metadata: { name: 'ctl' }, rules: [rule(['update'], [''], ['services/status']), rule(['get', 'list', 'watch'], [''], ['services'])] },
    'metallb-system/pod-lister': { metadata: { name: 'pod-lister' }, rules: [rule(['list'], [''], ['pods'])] },
  };
  const rbac = new RbacAuthorizer({
    clusterRoleBindings: () => objs.crb!,
    roleBindings: (ns) => objs.rb!.filter((b) => (b.metadata as Obj).namespace === ns),
    clusterRole: (n) => roles[n],
    role: (ns, n) => roles[`${ns}/${n}`],
  });
  const ctl = { username: 'system:serviceaccount:metallb-system:controller', groups: ['system:serviceaccounts', 'system:serviceaccounts:metallb-system', 'system:authenticated'] };
  const speaker = { username: 'system:serviceaccount:metallb-system:speaker', groups: ['system:serviceaccounts'] };
  const ok = rbac.authorize({ ...attrs('update', 'services', { subresource: 'status', name: 'x' }), user: ctl });
  assert.equal(ok.allowed, true);
  assert.equal(ok.reason, 'RBAC: allowed by ClusterRoleBinding "ctl" of ClusterRole "ctl" to ServiceAccount "controller/metallb-system"');
  const denied = { ...attrs('patch', 'services', { subresource: 'status', name: 'x' }), user: ctl };
  const d = rbac.authorize(denied);
  assert.equal(d.allowed, false);
  assert.equal(d.reason, 'RBAC: clusterrole.rbac.authorization.k8s.io "nope" not found');
  const err = forbiddenError(denied, '');
  assert.equal(err.code, 403);
  assert.equal(err.message, 'services "x" is forbidden: User "system:serviceaccount:metallb-system:controller" cannot patch resource "services/status" in API group "" in the namespace "default"');
  assert.deepEqual(err.toStatus().details, { name: 'x', kind: 'services' });
  assert.equal(rbac.authorize({ ...attrs('list', 'pods', { namespace: 'metallb-system' }), user: speaker }).allowed, true);
  assert.equal(rbac.authorize({ ...attrs('list', 'pods', { namespace: 'other' }), user: speaker }).allowed, false);
  const np = forbiddenError({ ...attrs('get', ''), resourceRequest: false, path: '/api', user: { username: 'system:anonymous', groups: [] } }, '');
  assert.equal(np.message, 'forbidden: User "system:anonymous" cannot get path "/api"');
  const cluster = forbiddenError({ ...attrs('list', 'nodes', { namespace: '' }), user: ctl }, '');
  assert.equal(cluster.message, 'nodes is forbidden: User "system:serviceaccount:metallb-system:controller" cannot list resource "nodes" in API group "" at the cluster scope');
  const grouped = forbiddenError({ ...attrs('get', 'ipaddresspools', { apiGroup: 'metallb.io', name: 'p' }), user: ctl }, '');
  assert.match(grouped.message, /^ipaddresspools\.metallb\.io "p" is forbidden: User .* cannot get resource "ipaddresspools" in API group "metallb\.io" in the namespace "default"$/);
});

test('escalation check: uncovered permissions', () => {
  const owner = [rule(['get', 'list'], [''], ['pods']), rule(['*'], ['apps'], ['*/scale']), rule(['get'], [''], ['secrets'], ['a'])];
  assert.deepEqual(uncovered(owner, [rule(['get'], [''], ['pods'])]), []);
  assert.deepEqual(uncovered(owner, [rule(['update'], ['apps'], ['deployments/scale'])]), []);
  assert.deepEqual(uncovered(owner, [rule(['get'], [''], ['secrets'], ['a'])]), []);
  assert.deepEqual(uncovered(owner, [rule(['get'], [''], ['secrets'])]), [rule(['get'], [''], ['secrets'])]);
  assert.deepEqual(uncovered(owner, [rule(['delete'], [''], ['pods'])]), [rule(['delete'], [''], ['pods'])]);
});

test('bootstrap policy: the user-facing and component roles exist; aggregation fills admin/edit/view', () => {
  const roles = bootstrapClusterRoles();
  const names = roles.map((r) => (r.metadata as Obj).name);
  for (const n of ['cluster-admin', 'admin', 'edit', 'view', 'system:discovery', 'system:basic-user', 'system:public-info-viewer', 'system:node-proxier', 'system:kube-controller-manager', 'system:kube-scheduler', 'system:node'])
    assert.ok(names.includes(n), n);
  const bindings = bootstrapClusterRoleBindings();
  for (const b of bindings) assert.ok(names.includes(String((b.roleRef as Obj).name)), `binding ${String((b.metadata as Obj).name)} refers to a bootstrap role`);
  const view = roles.find((r) => (r.metadata as Obj).name === 'view')!;
  const viewRules = aggregatedRules(view, roles) as PolicyRule[];
  assert.ok(viewRules.some((r) => r.resources?.includes('pods/log')));
  const edit = roles.find((r) => (r.metadata as Obj).name === 'edit')!;
  // edit aggregates view's (still empty) rules and aggregate-to-edit's
  assert.ok((aggregatedRules(edit, roles) as PolicyRule[]).some((r) => r.resources?.includes('serviceaccounts/token')));
});

test('token file: kube-apiserver CSV format, quoted groups, clear errors', () => {
  const t = parseTokenFile('# comment\nabc,alice,u1\ndef,bob,u2,"dev,qa"\n"g,h",carol,\n');
  assert.deepEqual(t.get('abc'), { username: 'alice', uid: 'u1', groups: [] });
  assert.deepEqual(t.get('def'), { username: 'bob', uid: 'u2', groups: ['dev', 'qa'] });
  assert.deepEqual(t.get('g,h'), { username: 'carol', groups: [] });
  assert.throws(() => parseTokenFile('abc,alice\n', 'f'), (e: unknown) => e instanceof TokenFileError && /f:1: want token,user,uid/.test(e.message));
  assert.throws(() => parseTokenFile('a,b,c\na,d,e\n', 'f'), /f:2: duplicate token/);
  assert.throws(() => parseTokenFile('a,b,c,"x\n', 'f'), /unterminated quoted field/);
});

test('service-account tokens: issued, verified, refused once expired, for other audiences, or when the SA or bound pod is gone', async () => {
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pub = kp.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const objects = new Map<string, Obj>();
  objects.set('serviceaccounts/ns/sa', { metadata: { name: 'sa', uid: 'sa-uid' } });
  objects.set('pods/ns/p', { metadata: { name: 'p', uid: 'pod-uid' } });
  const tokens = new ServiceAccountTokens(key, pub, (r, ns, n) => objects.get(`${r}/${ns}/${n}`));
  const sa = { name: 'sa', uid: 'sa-uid' };
  const { token } = await tokens.issue({ namespace: 'ns', serviceAccount: sa, audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 3600, bound: { kind: 'Pod', name: 'p', uid: 'pod-uid' } });
  const { user } = await tokens.verify(token);
  assert.equal(user.username, 'system:serviceaccount:ns:sa');
  assert.deepEqual(user.groups, ['system:serviceaccounts', 'system:serviceaccounts:ns']);
  assert.equal(user.uid, 'sa-uid');
  assert.deepEqual(user.extra?.['authentication.kubernetes.io/pod-name'], ['p']);
  const expired = await tokens.issue({ namespace: 'ns', serviceAccount: sa, audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: -120 });
  await assert.rejects(tokens.verify(expired.token), (e: unknown) => e instanceof InvalidTokenError && /expired/.test(e.message));
  const other = await tokens.issue({ namespace: 'ns', serviceAccount: sa, audiences: ['vault'], expirationSeconds: 3600 });
  await assert.rejects(tokens.verify(other.token), InvalidTokenError);
  objects.delete('pods/ns/p');
  await assert.rejects(tokens.verify(token), /pod ns\/p not found/);
  objects.set('pods/ns/p', { metadata: { name: 'p', uid: 'another-pod' } });
  await assert.rejects(tokens.verify(token), /does not match/);
  const legacy = tokens.issueLegacy('ns', 'sa-token', sa);
  objects.set('secrets/ns/sa-token', { metadata: { name: 'sa-token' }, data: { token: Buffer.from(legacy).toString('base64') } });
  assert.equal((await tokens.verify(legacy)).user.username, 'system:serviceaccount:ns:sa');
  objects.delete('secrets/ns/sa-token');
  await assert.rejects(tokens.verify(legacy), /secret ns\/sa-token not found/);
  objects.delete('serviceaccounts/ns/sa');
  await assert.rejects(tokens.verify(other.token), InvalidTokenError);
  // a token signed by another key
  const kp2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const foreign = new ServiceAccountTokens(kp2.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), kp2.publicKey.export({ type: 'spki', format: 'pem' }).toString(), () => undefined);
  const f = await foreign.issue({ namespace: 'ns', serviceAccount: sa, audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 3600 });
  await assert.rejects(tokens.verify(f.token), /signature/);
});

test('bootstrap policy reconciled at start: missing rules and subjects added unless autoupdate is "false"', () => {
  const store = new Store(100, 1);
  ensureBootstrapPolicy(store);
  const node = store.get(RBAC_KEYS.clusterRoles, '', 'system:node')!;
  const nodeRules = (node.rules as PolicyRule[]).filter((r) => !(r.resources ?? []).includes('serviceaccounts'));
  // an older server's system:node (without get serviceaccounts), a binding that lost a subject, a role opted out
  store.put(RBAC_KEYS.clusterRoles, { ...node, rules: nodeRules }, 'MODIFIED');
  const masters = store.get(RBAC_KEYS.clusterRoleBindings, '', 'cluster-admin')!;
  store.put(RBAC_KEYS.clusterRoleBindings, { ...masters, subjects: [{ kind: 'User', name: 'someone', apiGroup: 'rbac.authorization.k8s.io' }] }, 'MODIFIED');
  const proxier = store.get(RBAC_KEYS.clusterRoles, '', 'system:node-proxier')!;
  store.put(RBAC_KEYS.clusterRoles, { ...proxier, metadata: { ...(proxier.metadata as Obj), annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'false' } }, rules: [] }, 'MODIFIED');
  ensureBootstrapPolicy(store);
  const allows = (role: string, verb: string, resource: string): boolean =>
    (store.get(RBAC_KEYS.clusterRoles, '', role)!.rules as PolicyRule[]).some((r) => ruleAllows(attrs(verb, resource, { namespace: 'default', name: 'x' }), r));
  assert.ok(allows('system:node', 'get', 'serviceaccounts'));
  assert.ok(!allows('system:node', 'update', 'serviceaccounts'));
  assert.deepEqual((store.get(RBAC_KEYS.clusterRoleBindings, '', 'cluster-admin')!.subjects as Obj[]).map((x) => x.name), ['someone', 'system:masters']);
  assert.deepEqual(store.get(RBAC_KEYS.clusterRoles, '', 'system:node-proxier')!.rules, []);
  // nothing to do: no write
  const rv = store.currentRV();
  ensureBootstrapPolicy(store);
  assert.equal(store.currentRV(), rv);
});
