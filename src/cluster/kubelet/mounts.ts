// How a container's volumes appear at their mountPath inside its private mount namespace, without touching the
// host's filesystem.
//
// A mountPath that exists on the host (a directory, or a file for a file volume) is bind-mounted over directly.
// One that does not exist needs a mount point, and the host must not be littered with it: its deepest existing
// ancestor A is "shadowed" inside the container's namespace. The kubelet builds a shadow directory S (under the pod's
// directory in --root-dir) that holds one relative symlink per entry of A, pointing into `.metallb-host/`, plus the
// missing directories. The container's setup script then bind-mounts A at S/.metallb-host and S over A: every entry
// of A stays reachable (through the symlink), and the new mount point exists only inside the container. When A is
// the root directory (mountPath `/data` with no /data on the host) there is nothing to shadow over: the directory is
// created on the host and recorded, and removed when no pod of this kubelet uses it any more.
//
// The plan is pure (the host filesystem is read through `HostView`); `shadowFiles` and `setupScript` turn it into
// files and a shell script.
import { dirname, join, posix } from 'node:path';

export type Kind = 'dir' | 'file' | 'missing';

export interface HostView {
  /** What a path is on the host, following symlinks. */
  kind(path: string): Kind;
  /** Canonical path of an existing path. */
  realpath(path: string): string;
  /** Entries of an existing directory. */
  entries(dir: string): string[];
}

export interface MountRequest {
  /** Host path to bind (a volume directory, a file in it, a hostPath). */
  source: string;
  sourceKind: 'dir' | 'file';
  /** Absolute path inside the container. */
  target: string;
  readOnly: boolean;
}

export interface Shadow {
  /** Canonical host directory being shadowed. */
  hostDir: string;
  /** Directory under the pod's state dir that is mounted over it. */
  shadowDir: string;
  /** Entry names of hostDir (each becomes `name -> .metallb-host/name`). */
  entries: string[];
  /** Paths (relative to hostDir) to create in the shadow. */
  create: { rel: string; kind: 'dir' | 'file' }[];
}

export interface MountPlan {
  shadows: Shadow[];
  binds: { source: string; target: string; readOnly: boolean; mkdir?: 'dir' | 'file' }[];
  /** Directories that must be created on the host itself (a new top-level directory). */
  hostDirs: string[];
  /** workingDir to create inside the container before `cd` (it lies inside a mounted volume). */
  mkdirWorkingDir: boolean;
}

export class MountPlanError extends Error {
  override name = 'MountPlanError';
}

export const HOST_LINK_DIR = '.metallb-host';

const depth = (p: string): number => p.split('/').filter(Boolean).length;
const isUnder = (p: string, dir: string): boolean => dir === '/' || p === dir || p.startsWith(`${dir}/`);

/**
 * Plans the mounts of one container. `shadowBase` is a directory of the kubelet's (one subdirectory per shadow).
 * `workingDir`, when set, is created like a mount point when it is missing.
 */
export function planMounts(requests: MountRequest[], host: HostView, shadowBase: string, workingDir?: string): MountPlan {
  const plan: MountPlan = { shadows: [], binds: [], hostDirs: [], mkdirWorkingDir: false };
  const sorted = [...requests].map((r) => ({ ...r, target: posix.normalize(r.target) })).sort((a, b) => depth(a.target) - depth(b.target));
  const shadows = new Map<string, Shadow>();
  const needPath = (target: string, kind: 'dir' | 'file', earlierTargets: string[]): 'inside' | 'exists' | 'planned' => {
    if (earlierTargets.some((t) => t !== target && isUnder(target, t))) return 'inside';
    const k = host.kind(target);
    if (k !== 'missing') {
      if (k !== kind) throw new MountPlanError(`mount point ${target} is a ${k === 'dir' ? 'directory' : 'file'} on the node, the volume is a ${kind === 'dir' ? 'directory' : 'file'}`);
      return 'exists';
    }
    // Walk up to the deepest existing ancestor.
    let anc = dirname(target);
    while (anc !== '/' && host.kind(anc) === 'missing') anc = dirname(anc);
    if (anc !== '/' && host.kind(anc) !== 'dir') throw new MountPlanError(`mount point ${target}: ${anc} is not a directory on the node`);
    const real = host.realpath(anc);
    const rel = posix.relative(anc, target);
    if (real === '/') {
      // Nothing can be mounted over /: create the first missing directory on the host, shadow below it if needed.
      const top = `/${rel.split('/')[0]!}`;
      if (!plan.hostDirs.includes(top)) plan.hostDirs.push(top);
      const rest = rel.split('/').slice(1).join('/');
      if (rest === '') {
        if (kind === 'file') throw new MountPlanError(`mount point ${target}: a file volume cannot be mounted at a new path in the root directory`);
        return 'planned';
      }
      addShadow(top, top, rest, kind);
      return 'planned';
    }
    addShadow(real, anc, rel, kind);
    return 'planned';
  };
  const addShadow = (real: string, _anc: string, rel: string, kind: 'dir' | 'file'): void => {
    let s = shadows.get(real);
    if (!s) {
      const isNewTop = plan.hostDirs.includes(real);
      s = { hostDir: real, shadowDir: join(shadowBase, String(shadows.size)), entries: isNewTop ? [] : host.entries(real).filter((e) => e !== HOST_LINK_DIR), create: [] };
      shadows.set(real, s);
    }
    if (!s.create.some((c) => c.rel === rel)) s.create.push({ rel, kind });
  };
  const done: string[] = [];
  for (const r of sorted) {
    const where = needPath(r.target, r.sourceKind, done);
    plan.binds.push({ source: r.source, target: r.target, readOnly: r.readOnly, ...(where === 'inside' ? { mkdir: r.sourceKind } : {}) });
    done.push(r.target);
  }
  if (workingDir && workingDir !== '/') {
    const wd = posix.normalize(workingDir);
    const where = needPath(wd, 'dir', done);
    plan.mkdirWorkingDir = where === 'inside';
  }
  // Deeper shadows first: a shallower one's bind of its host directory then carries the deeper one along.
  plan.shadows = [...shadows.values()].sort((a, b) => depth(b.hostDir) - depth(a.hostDir));
  return plan;
}

/**
 * The descriptor the setup script reports on (one byte) once the container's namespaces are complete, then closes
 * before exec'ing the workload, which never sees it.
 */
export const SETUP_DONE_FD = 3;

/** Single-quotes a word for /bin/sh. */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface SetupScriptInput {
  plan: MountPlan;
  hostname: string;
  /** `cgroup.procs` files to join before exec. */
  cgroupProcs: string[];
  workingDir?: string;
  /** Run the workload through this (e.g. `setpriv … --`). */
  execPrefix?: string[];
  /**
   * Mount a sysfs of the pod's own network namespace at /sys (what a runtime gives a container: /sys/class/net shows
   * eth0, not the node's interfaces), keeping the cgroup hierarchy under /sys/fs/cgroup through `keepDir`.
   */
  freshSysfs?: { keepDir: string; readOnly: boolean };
}

/**
 * The script run as `sh SCRIPT argv…` inside the container's new mount and UTS namespaces: hostname, cgroups,
 * shadows, bind mounts (read-only remounts after all binds, so mount points inside a volume can still be made),
 * working directory, the report on SETUP_DONE_FD, then exec of the workload with the same pid.
 */
export function setupScript(i: SetupScriptInput): string {
  const L: string[] = ['#!/bin/sh', '# generated by the metallb-ts kubelet; run inside the container namespaces', 'set -e'];
  L.push(`printf %s ${shq(i.hostname)} > /proc/sys/kernel/hostname`);
  for (const f of i.cgroupProcs) L.push(`echo $$ > ${shq(f)}`);
  if (i.freshSysfs) {
    const keep = shq(i.freshSysfs.keepDir);
    L.push(
      `mount --rbind /sys/fs/cgroup ${keep}`,
      `mount -t sysfs -o ${i.freshSysfs.readOnly ? 'ro,' : ''}nosuid,nodev,noexec sysfs /sys`,
      `mount --rbind ${keep} /sys/fs/cgroup`,
      `umount -l ${keep}`,
    );
  }
  for (const s of i.plan.shadows) {
    L.push(`mount --rbind ${shq(s.hostDir)} ${shq(join(s.shadowDir, HOST_LINK_DIR))}`);
    L.push(`mount --rbind ${shq(s.shadowDir)} ${shq(s.hostDir)}`);
  }
  for (const b of i.plan.binds) {
    if (b.mkdir === 'dir') L.push(`mkdir -p ${shq(b.target)}`);
    if (b.mkdir === 'file') L.push(`mkdir -p ${shq(dirname(b.target))}`, `[ -e ${shq(b.target)} ] || : > ${shq(b.target)}`);
    L.push(`mount --bind ${shq(b.source)} ${shq(b.target)}`);
  }
  for (const b of i.plan.binds) if (b.readOnly) L.push(`mount -o remount,bind,ro ${shq(b.target)}`);
  if (i.workingDir) {
    if (i.plan.mkdirWorkingDir) L.push(`mkdir -p ${shq(i.workingDir)}`);
    L.push(`cd ${shq(i.workingDir)}`);
  }
  // SIGPIPE is ignored only around the report (a kubelet gone meanwhile must not kill the start); the workload gets
  // the default disposition back.
  L.push(`trap '' PIPE`, `printf . >&${SETUP_DONE_FD} || :`, 'trap - PIPE', `exec ${SETUP_DONE_FD}>&-`);
  L.push(`exec ${[...(i.execPrefix ?? []).map(shq), '"$@"'].join(' ')}`, '');
  return L.join('\n');
}
