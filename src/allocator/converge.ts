// MetalLB's convergeBalancer (controller/service.go) for one Service: from what the Service asks for and what it
// currently holds, the addresses it should hold now, with MetalLB's events and a human reason when it is pending.
import { compareIP, formatIP, type IP } from '../net/ip.js';
import type { Allocator } from './allocator.js';
import { familyOfAddresses, goQuoteList, type ServiceView } from './service-view.js';
import type { AllocOutcome, Holding, ServiceFamily } from './types.js';

export interface ServiceEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What one Service should look like after converging it. */
export interface ConvergeResult {
  /** Desired `status.loadBalancer.ingress[].ip`, v4 before v6; empty = no addresses (state cleared). */
  ingress: string[];
  /** Desired `metallb.io/ip-allocated-from-pool`; undefined = remove it. */
  pool?: string;
  events: ServiceEvent[];
  /** True when this change freed or moved an address, so every other Service should be converged again. */
  reprocessAll: boolean;
  /** Why the Service is left without addresses, for people (dry-run table, logs). */
  pendingReason?: string;
}

export interface ConvergeOutput extends ConvergeResult {
  /** Events that describe a state MetalLB would report again on every converge; used to de-duplicate them. */
  quietEvents: ServiceEvent[];
}

const quoteIPs = (ips: readonly IP[]): string => goQuoteList(ips.map(formatIP));

/** Whether `ip` is in `list` (one or two addresses: a scan beats building a set). */
const includesIP = (list: readonly IP[], ip: IP): boolean => list.some((x) => compareIP(x, ip) === 0);

function sameIPSet(a: readonly IP[], b: readonly IP[]): boolean {
  return a.length === b.length && b.every((ip) => includesIP(a, ip));
}

/** serviceFamilyChanged: do the held addresses still fit the Service's family? */
function familyChanged(held: ServiceFamily, svc: ServiceFamily, view: ServiceView): boolean {
  if (held === svc) return false;
  return !(svc === 'dual' && view.policy === 'PreferDualStack');
}

/** Did the transition from `before` to `after` free an address or a port others may be waiting for? */
function freedSomething(before: Holding | undefined, after: Holding | undefined): boolean {
  if (!before) return false;
  if (!after) return true;
  if (!before.ips.every((ip) => includesIP(after.ips, ip))) return true;
  if (before.sharing !== after.sharing || before.backend !== after.backend) return true;
  return before.ports.some((p) => !after.ports.includes(p));
}

interface Ctx {
  alloc: Allocator;
  key: string;
  before: Holding | undefined;
  events: ServiceEvent[];
  quietEvents: ServiceEvent[];
  deferred: boolean;
}

/**
 * MetalLB's wording first (people search and alert on it), then our plain-words reason when it says more:
 * "Stuck <pending> without saying why" is the complaint MetalLB users report most.
 */
function allocationFailedMessage(key: string, error: string, reason: string | undefined): string {
  const head = `Failed to allocate IP for ${JSON.stringify(key)}: ${error}`;
  return reason && reason !== error && !error.includes(reason) ? `${head} (${reason})` : head;
}

function finish(c: Ctx, pendingReason?: string): ConvergeOutput {
  const after = c.alloc.holding(c.key);
  const out: ConvergeOutput = {
    ingress: after ? [...after.texts] : [],
    events: c.events,
    quietEvents: c.quietEvents,
    reprocessAll: c.deferred || freedSomething(c.before, after),
  };
  if (after) out.pool = after.pool;
  else if (pendingReason !== undefined) out.pendingReason = pendingReason;
  return out;
}

function clear(c: Ctx, pendingReason: string): ConvergeOutput {
  c.alloc.unassign(c.key);
  return finish(c, pendingReason);
}

function normal(c: Ctx, reason: string, message: string): void {
  c.events.push({ type: 'Normal', reason, message });
}

function warning(c: Ctx, reason: string, message: string): void {
  c.events.push({ type: 'Warning', reason, message });
}

export function convergeService(alloc: Allocator, view: ServiceView): ConvergeOutput {
  const key = view.key;
  const req = view.request;
  const before = alloc.holding(key);
  const c: Ctx = { alloc, key, before, events: [], quietEvents: [], deferred: false };
  // A Service we hold nothing for but whose status carries addresses is being restored (startup, or after
  // setPools dropped it). While restoring, it never takes a NEW address in the same converge: Services later in
  // restoreOrder may still have to re-claim theirs. It asks for a reprocess instead and allocates on that pass.
  const restoring = before === undefined && view.currentTexts.length > 0;

  // 1. Not a LoadBalancer: drop any state, never allocate.
  if (view.type !== 'LoadBalancer') return clear(c, `not a LoadBalancer Service (type ${view.type})`);
  // 2. Nothing to allocate from, or no way to know the family.
  if (alloc.pools.size === 0) return clear(c, 'no IPAddressPool is configured');
  if (view.family === undefined) {
    const err = view.familyError ?? 'unknown IP family';
    warning(c, 'AllocationFailed', `Failed to allocate IP for ${JSON.stringify(key)}: ${err}`);
    return clear(c, `cannot determine the IP family of the Service: ${err}`);
  }
  // 3. RequireDualStack needs two cluster IPs.
  if (view.policy === 'RequireDualStack' && view.clusterIPCount < 2) {
    warning(c, 'not enough clusterips', `Service requires dual stack but not enough clusterips [${view.clusterIPTexts.join(' ')}]`);
    return clear(c, 'ipFamilyPolicy is RequireDualStack but the Service has fewer than two cluster IPs');
  }

  // Current addresses: the Service status, else what we already hold for it (converging the same object twice,
  // before its status was written, must not hand out a second address nor report a new allocation).
  let current: IP[] = [];
  if (view.currentTexts.length > 0) {
    const fam = view.currentInvalid ? undefined : familyOfAddresses(view.currentIPs, view.currentTexts);
    if (!fam || !('family' in fam)) {
      const err = fam && 'error' in fam ? fam.error : `invalid address in ${goQuoteList(view.currentTexts)}`;
      warning(c, 'nolbIPsIPFamily', `Failed to retrieve LBIPs IPFamily for ${goQuoteList(view.currentTexts)}: ${err}`);
      alloc.unassign(key);
    } else if (familyChanged(fam.family, view.family, view)) {
      alloc.unassign(key);
    } else {
      current = view.currentIPs;
    }
  } else if (before) {
    const fam: ServiceFamily = before.ips.length === 2 ? 'dual' : before.ips[0]!.family;
    if (familyChanged(fam, view.family, view)) alloc.unassign(key);
    else current = [...before.ips];
  } else {
    alloc.unassign(key);
  }

  // 4. Re-assign what it holds (idempotent when still allowed), drop it when the config or the request changed.
  if (current.length > 0) {
    const r = alloc.assign(req, current);
    if (!r.ok) {
      normal(c, 'ClearAssignment', `current IP for ${JSON.stringify(key)} not allowed by config, will attempt for new IP assignment: ${r.error}`);
      alloc.unassign(key);
      current = [];
    }
    if (current.length > 0 && view.desiredPool !== '' && alloc.holding(key)?.pool !== view.desiredPool) {
      alloc.unassign(key);
      current = [];
    }
    if (view.requested.kind === 'invalid') {
      warning(c, 'LoadBalancerFailed', `invalid requested loadbalancer IPs: ${view.requested.error}`);
      // MetalLB stops here (ErrConverge): whatever is still held stays.
      return finish(c, `invalid requested IPs: ${view.requested.error}`);
    }
    if (view.requested.kind === 'ips' && current.length > 0 && !sameIPSet(current, view.requested.ips)) {
      alloc.unassign(key);
      current = [];
    }
  }

  if (restoring && current.length === 0) {
    c.deferred = true;
    return finish(c, `its address ${view.currentTexts.join(', ')} cannot be kept; a new one is chosen once every Service has re-claimed its addresses (next pass)`);
  }

  // 5. PreferDualStack holding one family: try to add the other one from the same pool.
  //    (MetalLB also tries this for single-stack cluster IPs, which then flaps; we require a dual-stack Service.)
  if (current.length === 1 && view.policy === 'PreferDualStack' && view.family === 'dual' && restoring) {
    c.deferred = true;
  } else if (current.length === 1 && view.policy === 'PreferDualStack' && view.family === 'dual') {
    const pool = alloc.holding(key)?.pool ?? '';
    const r = alloc.allocateAdditional(req, current[0]!, pool);
    if (!r.ok) {
      normal(c, 'AdditionalAssignFailed', `cannot assign additional IP in PreferDualStack: ${r.error}`);
    } else {
      const added = r.ips.find((ip) => ip.family !== current[0]!.family)!;
      normal(c, 'IPAllocated', `Assigned additional IP ${JSON.stringify(formatIP(added))}`);
      current = r.ips;
    }
  }

  // 6. Nothing held: allocate.
  if (current.length === 0) {
    const r = allocateIPs(alloc, view);
    if (!r.ok) {
      warning(c, 'AllocationFailed', allocationFailedMessage(key, r.error, r.reason));
      alloc.unassign(key);
      return finish(c, r.reason);
    }
    normal(c, 'IPAllocated', `Assigned IP ${quoteIPs(r.ips)}`);
    if (r.ips.length === 1 && view.policy === 'PreferDualStack' && view.family === 'dual') {
      // The pool chosen has no free address of the other family (else it would have given both): MetalLB reports
      // AdditionalAssignFailed on the next converge; we remember it as already reported.
      const add = alloc.allocateAdditional(req, r.ips[0]!, r.pool);
      if (!add.ok) {
        c.quietEvents.push({ type: 'Normal', reason: 'AdditionalAssignFailed', message: `cannot assign additional IP in PreferDualStack: ${add.error}` });
      }
    }
  }
  return finish(c);
}

/** MetalLB's allocateIPs: requested IPs, else the requested pool, else automatic. */
function allocateIPs(alloc: Allocator, view: ServiceView): AllocOutcome {
  const req = view.request;
  const rq = view.requested;
  if (rq.kind === 'invalid') return { ok: false, error: rq.error, reason: `invalid requested IPs: ${rq.error}` };
  if (rq.kind === 'ips') {
    if (rq.family === undefined) {
      const err = rq.familyError ?? 'invalid requested IPs';
      return { ok: false, error: err, reason: `the requested IPs ${rq.texts.join(', ')} must be one address, or one IPv4 and one IPv6 address` };
    }
    if (rq.family !== view.family) {
      return {
        ok: false,
        error: `requested loadBalancer IP(s) ${quoteIPs(rq.ips)} does not match the ipFamily of the service`,
        reason: `the requested IPs ${rq.texts.join(', ')} (${rq.family}) do not match the Service's IP family (${view.family ?? 'unknown'})`,
      };
    }
    const r = alloc.assign(req, rq.ips);
    if (!r.ok) return { ok: false, error: r.error, reason: `cannot use the requested ${rq.texts.length === 1 ? 'IP' : 'IPs'} ${rq.texts.join(', ')}: ${r.reason}` };
    if (view.desiredPool !== '' && r.pool !== view.desiredPool) {
      alloc.unassign(req.key);
      return {
        ok: false,
        error: `requested loadBalancer IP(s) ${quoteIPs(rq.ips)} is not compatible with requested address pool ${view.desiredPool}`,
        reason: `the requested IPs ${rq.texts.join(', ')} are in pool ${r.pool}, not in the requested pool ${view.desiredPool}`,
      };
    }
    return r;
  }
  if (view.desiredPool !== '') return alloc.allocateFromPool(req, view.desiredPool);
  return alloc.allocate(req);
}
