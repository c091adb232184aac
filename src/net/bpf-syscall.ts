// The bpf(2) commands we use, with union bpf_attr laid out here (linux/bpf.h; offsets checked against the uapi
// header by test/net/ebpf.test.ts's programs loading at all): load a program, an array map and read it, attach an
// XDP program to an interface through a link and swap its program, and run a program on a frame without attaching
// it (BPF_PROG_TEST_RUN). File descriptors are plain numbers; closing a link's fd detaches its program.
import { closeSync } from 'node:fs';
import { endianness } from 'node:os';
import { errnoCode, loadNative, type NativeBinding } from './native.js';

/** enum bpf_cmd. */
export const BpfCmd = { mapCreate: 0, mapLookupElem: 1, progLoad: 5, progTestRun: 10, linkCreate: 28, linkUpdate: 29 } as const;
/** enum bpf_prog_type. */
export const BpfProgType = { xdp: 6 } as const;
/** enum bpf_map_type. */
export const BpfMapType = { array: 2 } as const;
/** enum bpf_attach_type. */
export const BpfAttachType = { xdp: 37 } as const;
/** XDP_FLAGS_* (linux/if_link.h): generic (skb) or driver mode; neither lets the kernel choose. */
export const XdpFlags = { skbMode: 1 << 1, drvMode: 1 << 2 } as const;

/** sizeof(union bpf_attr) is 144 on 6.x; older kernels take a shorter one as long as the rest is zero. */
const ATTR_SIZE = 144;
const LE = endianness() === 'LE';

/** A bpf(2) failure: `code` is the errno name (EPERM, EINVAL, ...); `verifierLog` the verifier's words, if any. */
export class BpfError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly verifierLog?: string,
  ) {
    super(message);
    this.name = 'BpfError';
  }
}

function attr(): Buffer {
  return Buffer.alloc(ATTR_SIZE);
}
const u32 = (b: Buffer, off: number, v: number) => (LE ? b.writeUInt32LE(v >>> 0, off) : b.writeUInt32BE(v >>> 0, off));
const readU32 = (b: Buffer, off: number) => (LE ? b.readUInt32LE(off) : b.readUInt32BE(off));

function binding(): NativeBinding & { bpf: NonNullable<NativeBinding['bpf']> } {
  const native = loadNative();
  if (!native.bpf) throw new BpfError('the native addon was built before bpf(2) support: rebuild it with `npm run build:native`', 'ENOSYS');
  return native as NativeBinding & { bpf: NonNullable<NativeBinding['bpf']> };
}

function sys(what: string, cmd: number, a: Buffer, pointers?: readonly (readonly [number, Buffer | null])[]): number {
  try {
    return binding().bpf(cmd, a, pointers);
  } catch (err) {
    if (err instanceof BpfError) throw err;
    throw new BpfError(`${what}: ${(err as Error).message}`, errnoCode(err));
  }
}

/** Whether the addon has the bpf(2) wrapper (it says nothing about permission or kernel support). */
export function bpfSyscallAvailable(): boolean {
  try {
    binding();
    return true;
  } catch {
    return false;
  }
}

export interface ProgramSpec {
  readonly type: number;
  readonly insns: Buffer;
  /** At most 15 characters (shown by bpftool). */
  readonly name: string;
  readonly expectedAttachType?: number;
  /** The verifier's log is fetched on a rejection; its size. */
  readonly logBytes?: number;
}

/** BPF_PROG_LOAD: the program's fd. A rejected program's error carries the verifier's log. */
export function loadProgram(spec: ProgramSpec): number {
  const license = Buffer.from('GPL\0');
  const build = (log: Buffer | null) => {
    const a = attr();
    u32(a, 0, spec.type);
    u32(a, 4, spec.insns.length / 8);
    if (log) {
      u32(a, 24, 1); // log_level
      u32(a, 28, log.length);
    }
    a.write(spec.name.slice(0, 15), 48, 'latin1'); // prog_name[16]
    u32(a, 68, spec.expectedAttachType ?? 0);
    return [a, [[8, spec.insns], [16, license], [32, log]] as const] as const;
  };
  const [a, ptrs] = build(null);
  try {
    return sys('BPF_PROG_LOAD', BpfCmd.progLoad, a, ptrs);
  } catch (err) {
    const code = (err as BpfError).code;
    if (code !== 'EINVAL' && code !== 'EACCES') throw err;
    // Load again with the verifier's log, to say why.
    const log = Buffer.alloc(spec.logBytes ?? 64 * 1024);
    const [a2, ptrs2] = build(log);
    try {
      const fd = sys('BPF_PROG_LOAD', BpfCmd.progLoad, a2, ptrs2);
      return fd;
    } catch (again) {
      const text = log.toString('latin1', 0, Math.max(0, log.indexOf(0))).trim();
      throw new BpfError(`${(again as Error).message}${text ? `; verifier: ${text.split('\n').slice(-8).join(' | ')}` : ''}`, (again as BpfError).code, text);
    }
  }
}

/** BPF_MAP_CREATE of an array of `maxEntries` values of `valueSize` bytes, keyed by u32 index. */
export function createArrayMap(name: string, valueSize: number, maxEntries: number): number {
  const a = attr();
  u32(a, 0, BpfMapType.array);
  u32(a, 4, 4);
  u32(a, 8, valueSize);
  u32(a, 12, maxEntries);
  a.write(name.slice(0, 15), 28, 'latin1'); // map_name[16]
  return sys('BPF_MAP_CREATE', BpfCmd.mapCreate, a);
}

/** BPF_MAP_LOOKUP_ELEM of index `index` of an array map into `value` (its value size). */
export function lookupArrayElem(mapFd: number, index: number, value: Buffer): Buffer {
  const a = attr();
  const key = Buffer.alloc(4);
  u32(key, 0, index);
  u32(a, 0, mapFd);
  sys('BPF_MAP_LOOKUP_ELEM', BpfCmd.mapLookupElem, a, [
    [8, key],
    [16, value],
  ]);
  return value;
}

/** BPF_LINK_CREATE attaching XDP program `progFd` to interface `ifindex`; closing the returned fd detaches it. */
export function attachXdpLink(progFd: number, ifindex: number, flags: number): number {
  const a = attr();
  u32(a, 0, progFd);
  u32(a, 4, ifindex);
  u32(a, 8, BpfAttachType.xdp);
  u32(a, 12, flags);
  return sys('BPF_LINK_CREATE', BpfCmd.linkCreate, a);
}

/** BPF_LINK_UPDATE: the link runs `newProgFd` from now on (atomically: every frame sees one or the other). */
export function updateLink(linkFd: number, newProgFd: number): void {
  const a = attr();
  u32(a, 0, linkFd);
  u32(a, 4, newProgFd);
  sys('BPF_LINK_UPDATE', BpfCmd.linkUpdate, a);
}

export interface TestRunResult {
  /** The program's return value (an XDP verdict). */
  readonly retval: number;
  /** The frame as the program left it. */
  readonly data: Buffer;
  /** Average run time in ns (over `repeat` runs). */
  readonly durationNs: number;
}

/** BPF_PROG_TEST_RUN: runs the program on a copy of `data` without attaching it (root). */
export function testRun(progFd: number, data: Buffer, repeat = 1): TestRunResult {
  const a = attr();
  const out = Buffer.alloc(Math.max(data.length + 256, 256));
  u32(a, 0, progFd);
  u32(a, 8, data.length);
  u32(a, 12, out.length);
  u32(a, 32, repeat);
  sys('BPF_PROG_TEST_RUN', BpfCmd.progTestRun, a, [
    [16, data],
    [24, out],
  ]);
  return { retval: readU32(a, 4), data: out.subarray(0, readU32(a, 12)), durationNs: readU32(a, 36) };
}

/** Closes a program, map or link fd (a link's close detaches its program). */
export function closeBpfFd(fd: number): void {
  closeSync(fd);
}
