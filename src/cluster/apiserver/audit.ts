// kube-apiserver's audit log (`--audit-log-path`), reduced to what tests need to know who did what: one
// audit.k8s.io/v1 Event per request at level Metadata, stage ResponseComplete, as a JSON line. kube-apiserver needs
// an audit policy to log anything; here the implied policy is "Metadata for every request". Watches are logged when
// they end (their ResponseComplete), so a reader that wants them stops the watching client first.
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RequestInfo } from './auth/request-info.js';
import type { UserInfo } from './auth/user.js';

/** What the HTTP layer knows about a finished request. */
export interface AuditRecord {
  info: RequestInfo;
  method: string;
  requestURI: string;
  /** the authenticated user (undefined when authentication failed) */
  requestor?: UserInfo;
  /** the user the request ran as, when it impersonated another */
  impersonated?: UserInfo;
  sourceIP?: string;
  userAgent?: string;
  code: number;
  /** the authorizer refused the request (403 before any handler) */
  forbidden?: boolean;
  received: Date;
}

export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: 'Metadata';
  auditID: string;
  stage: 'ResponseComplete';
  requestURI: string;
  verb: string;
  user: { username?: string; uid?: string; groups?: string[] };
  impersonatedUser?: { username?: string; uid?: string; groups?: string[] };
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; apiGroup?: string; apiVersion?: string; subresource?: string };
  responseStatus: { metadata: Record<string, never>; code: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations?: Record<string, string>;
}

const userOf = (u: UserInfo): AuditEvent['user'] => ({ username: u.username, ...(u.uid ? { uid: u.uid } : {}), groups: u.groups });

/** RFC 3339 with microseconds, as kube-apiserver writes its MicroTime fields. */
const micro = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export function auditEvent(r: AuditRecord, now = new Date()): AuditEvent {
  const i = r.info;
  const ev: AuditEvent = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: randomUUID(),
    stage: 'ResponseComplete',
    requestURI: r.requestURI,
    // kube-apiserver's RequestInfo verb (list, watch, deletecollection...); non-resource requests: the method
    verb: i.resourceRequest ? i.verb : r.method.toLowerCase(),
    user: r.requestor ? userOf(r.requestor) : {},
    ...(r.impersonated ? { impersonatedUser: userOf(r.impersonated) } : {}),
    ...(r.sourceIP ? { sourceIPs: [r.sourceIP] } : {}),
    ...(r.userAgent ? { userAgent: r.userAgent } : {}),
    responseStatus: { metadata: {}, code: r.code },
    requestReceivedTimestamp: micro(r.received),
    stageTimestamp: micro(now),
  };
  if (i.resourceRequest) {
    ev.objectRef = {
      resource: i.resource,
      ...(i.namespace ? { namespace: i.namespace } : {}),
      ...(i.name ? { name: i.name } : {}),
      apiGroup: i.apiGroup,
      apiVersion: i.apiVersion,
      ...(i.subresource ? { subresource: i.subresource } : {}),
    };
  }
  if (r.requestor) ev.annotations = { 'authorization.k8s.io/decision': r.forbidden ? 'forbid' : 'allow' };
  return ev;
}

/** Appends events to a file (`-`: stdout), one JSON line each, written synchronously so no line is lost at exit. */
export class AuditLog {
  private fd: number | undefined;

  constructor(path: string) {
    if (path === '-') this.fd = 1;
    else {
      mkdirSync(dirname(path), { recursive: true });
      this.fd = openSync(path, 'a');
    }
  }

  write(r: AuditRecord): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, `${JSON.stringify(auditEvent(r))}\n`);
  }

  close(): void {
    if (this.fd !== undefined && this.fd !== 1) closeSync(this.fd);
    this.fd = undefined;
  }
}
