// securityContext as a runtime applies it to the container's process: user and groups (runAsUser, runAsGroup,
// supplementalGroups, fsGroup; runAsNonRoot refused for root), capabilities (the runtime's default set, `drop`,
// `add`, everything when `privileged`), and no_new_privs unless allowPrivilegeEscalation. The result is a
// `setpriv` command line (util-linux) the setup script exec's the workload through. Pure.
import { ContainerConfigError } from './env.js';
import type { Container, Pod } from './types.js';

interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  supplementalGroups?: number[];
  fsGroup?: number;
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}

/** containerd's and CRI-O's default capability set for a container. */
export const DEFAULT_CAPABILITIES = ['chown', 'dac_override', 'fsetid', 'fowner', 'mknod', 'net_raw', 'setgid', 'setuid', 'setfcap', 'setpcap', 'net_bind_service', 'sys_chroot', 'kill', 'audit_write'];

const CAP_NAME = /^(CAP_)?[A-Z_]+$/i;
const capName = (c: string): string => c.toLowerCase().replace(/^cap_/, '');

export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

/** The user the container runs as (the image default when nothing says otherwise). */
export function identityOf(pod: Pod, c: Container, imageUser: { uid: number; gid: number }): Identity {
  const psc = ((pod.spec as { securityContext?: SecurityContext }).securityContext ?? {}) as SecurityContext;
  const csc = ((c as { securityContext?: SecurityContext }).securityContext ?? {}) as SecurityContext;
  const uid = csc.runAsUser ?? psc.runAsUser ?? imageUser.uid;
  // Without runAsGroup the runtime takes the user's group from the image: the image user's, or root's.
  const gid = csc.runAsGroup ?? psc.runAsGroup ?? (uid === imageUser.uid ? imageUser.gid : 0);
  const groups = [...new Set([...(psc.supplementalGroups ?? []), ...(psc.fsGroup !== undefined ? [psc.fsGroup] : [])])];
  const nonRoot = csc.runAsNonRoot ?? psc.runAsNonRoot;
  if (nonRoot === true && uid === 0) {
    throw new ContainerConfigError(csc.runAsUser !== undefined || psc.runAsUser !== undefined ? 'container\'s runAsUser breaks non-root policy' : 'container has runAsNonRoot and image will run as root');
  }
  return { uid, gid, groups };
}

/** `setpriv …` arguments (ending in `--`) for the container's identity and capabilities. */
export function setprivArgs(pod: Pod, c: Container, imageUser: { uid: number; gid: number }): string[] {
  const csc = ((c as { securityContext?: SecurityContext }).securityContext ?? {}) as SecurityContext;
  const id = identityOf(pod, c, imageUser);
  let caps: Set<string>;
  if (csc.privileged) {
    caps = new Set(['all']);
  } else {
    for (const x of [...(csc.capabilities?.add ?? []), ...(csc.capabilities?.drop ?? [])]) {
      if (!CAP_NAME.test(x)) throw new ContainerConfigError(`invalid capability "${x}"`);
    }
    const drop = (csc.capabilities?.drop ?? []).map(capName);
    caps = drop.includes('all') ? new Set() : new Set(DEFAULT_CAPABILITIES.filter((x) => !drop.includes(x)));
    for (const a of (csc.capabilities?.add ?? []).map(capName)) caps.add(a);
  }
  const args = ['setpriv'];
  if (id.uid !== 0 || id.gid !== 0 || id.groups.length > 0) {
    args.push(`--reuid=${id.uid}`, `--regid=${id.gid}`, id.groups.length > 0 ? `--groups=${id.groups.join(',')}` : '--clear-groups');
  }
  if (!caps.has('all')) {
    const list = [...caps].sort();
    args.push(`--bounding-set=-all${list.map((x) => `,+${x}`).join('')}`, `--inh-caps=-all`);
  }
  if (!csc.privileged && csc.allowPrivilegeEscalation === false) args.push('--no-new-privs');
  args.push('--');
  return args;
}
