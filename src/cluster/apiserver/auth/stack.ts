// The request filters kube-apiserver runs before any handler, in its order: authentication, impersonation,
// authorization. A request that passes them carries its user on to admission and the handlers.
import type { IncomingMessage } from 'node:http';
import type { Authenticator } from './authn.js';
import { forbiddenError, type Authorizer } from './authz.js';
import { impersonate } from './impersonation.js';
import { requestInfo, type Attributes } from './request-info.js';
import type { ObjectLookup, ServiceAccountTokens } from './sa-tokens.js';
import type { RbacSource } from './rbac.js';
import type { UserInfo } from './user.js';

export interface AuthStack {
  authenticator: Authenticator;
  authorizer: Authorizer;
  tokens: ServiceAccountTokens;
  apiAudiences: string[];
  lookup: ObjectLookup;
  /** `--service-account-max-token-expiration` */
  maxTokenExpirationSeconds?: number;
  /** RBAC objects, for escalation checks on role and binding writes */
  rbacSource?: RbacSource;
}

/**
 * The user the request runs as; throws the 401 / 403 ApiError kube-apiserver would answer with. `onUsers` learns the
 * authenticated user and the impersonated one (if any) before authorization (for the audit log).
 */
export async function admitRequest(
  req: IncomingMessage,
  pathname: string,
  query: URLSearchParams,
  stack: AuthStack,
  onUsers?: (requestor: UserInfo, impersonated: UserInfo | undefined) => void,
): Promise<{ user: UserInfo; attributes: Attributes }> {
  const requestor = await stack.authenticator.authenticate(req);
  onUsers?.(requestor, undefined);
  const impersonated = impersonate(req, requestor, stack.authorizer);
  if (impersonated) onUsers?.(requestor, impersonated);
  const user = impersonated ?? requestor;
  const attributes: Attributes = { ...requestInfo(req.method ?? 'GET', pathname, query), user };
  const d = stack.authorizer.authorize(attributes);
  if (!d.allowed) throw forbiddenError(attributes, d.reason);
  return { user, attributes };
}
