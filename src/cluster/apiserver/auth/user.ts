// Who a request comes from, as kube-apiserver's authenticators describe it (k8s.io/apiserver/pkg/authentication/user).

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export const SYSTEM_MASTERS = 'system:masters';
export const ALL_AUTHENTICATED = 'system:authenticated';
export const ALL_UNAUTHENTICATED = 'system:unauthenticated';
export const ANONYMOUS_USER = 'system:anonymous';
export const SA_PREFIX = 'system:serviceaccount:';
export const SA_GROUP = 'system:serviceaccounts';

export const anonymous = (): UserInfo => ({ username: ANONYMOUS_USER, groups: [ALL_UNAUTHENTICATED] });

/** What every authenticated request gets: `system:authenticated` added once (kube's group adder). */
export function withAuthenticated(u: UserInfo): UserInfo {
  if (u.username === ANONYMOUS_USER || u.groups.includes(ALL_AUTHENTICATED)) return u;
  return { ...u, groups: [...u.groups, ALL_AUTHENTICATED] };
}

export const serviceAccountUsername = (namespace: string, name: string): string => `${SA_PREFIX}${namespace}:${name}`;

/** `system:serviceaccount:NS:NAME` → [NS, NAME], or undefined for other users. */
export function parseServiceAccountUsername(username: string): [string, string] | undefined {
  if (!username.startsWith(SA_PREFIX)) return undefined;
  const parts = username.slice(SA_PREFIX.length).split(':');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return [parts[0], parts[1]];
}

export const serviceAccountGroups = (namespace: string): string[] => [SA_GROUP, `${SA_GROUP}:${namespace}`];
