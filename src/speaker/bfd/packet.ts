// BFD Control packets (RFC 5880 §4.1): the one message of asynchronous mode. Intervals are microseconds on the
// wire and in these types. Authentication sections are parsed for their length and type only: we run without
// authentication, and a packet that carries one is refused (§6.8.6), as is one without when we would expect it.

export const BFD_VERSION = 1;
export const CONTROL_LENGTH = 24; // RFC 5880 §4.1, without authentication
export const SINGLE_HOP_PORT = 3784; // RFC 5881 §4
export const MULTI_HOP_PORT = 4784; // RFC 5883 §5
export const SOURCE_PORT_MIN = 49152; // RFC 5881 §4
export const SOURCE_PORT_MAX = 65535;

export const State = { ADMIN_DOWN: 0, DOWN: 1, INIT: 2, UP: 3 } as const; // RFC 5880 §4.1 Sta
export type StateValue = (typeof State)[keyof typeof State];
export const STATE_NAMES = ['AdminDown', 'Down', 'Init', 'Up'] as const;
export type StateName = (typeof STATE_NAMES)[number];

export const Diag = {
  NONE: 0,
  CONTROL_DETECTION_TIME_EXPIRED: 1,
  ECHO_FUNCTION_FAILED: 2,
  NEIGHBOR_SIGNALED_SESSION_DOWN: 3,
  FORWARDING_PLANE_RESET: 4,
  PATH_DOWN: 5,
  CONCATENATED_PATH_DOWN: 6,
  ADMINISTRATIVELY_DOWN: 7,
  REVERSE_CONCATENATED_PATH_DOWN: 8,
} as const; // RFC 5880 §4.1 Diag

export const DIAG_NAMES: Readonly<Record<number, string>> = {
  0: 'No Diagnostic', 1: 'Control Detection Time Expired', 2: 'Echo Function Failed', 3: 'Neighbor Signaled Session Down',
  4: 'Forwarding Plane Reset', 5: 'Path Down', 6: 'Concatenated Path Down', 7: 'Administratively Down', 8: 'Reverse Concatenated Path Down',
};

export interface ControlPacket {
  version: number;
  diag: number;
  state: StateValue;
  /** P: Poll, F: Final, C: Control Plane Independent, A: Authentication Present, D: Demand, M: Multipoint. */
  poll: boolean;
  final: boolean;
  controlPlaneIndependent: boolean;
  authenticationPresent: boolean;
  demand: boolean;
  multipoint: boolean;
  detectMult: number;
  myDiscriminator: number;
  yourDiscriminator: number;
  /** Microseconds. */
  desiredMinTxInterval: number;
  requiredMinRxInterval: number;
  requiredMinEchoRxInterval: number;
}

export type ControlFields = Omit<ControlPacket, 'version' | 'authenticationPresent' | 'multipoint' | 'controlPlaneIndependent' | 'demand'>
  & Partial<Pick<ControlPacket, 'controlPlaneIndependent' | 'demand'>>;

// RFC 5880 §4.1
export function encodeControl(p: ControlFields, out: Buffer = Buffer.allocUnsafe(CONTROL_LENGTH)): Buffer {
  out[0] = (BFD_VERSION << 5) | (p.diag & 0x1f);
  out[1] = ((p.state & 3) << 6) | (p.poll ? 0x20 : 0) | (p.final ? 0x10 : 0) | (p.controlPlaneIndependent ? 0x08 : 0) | (p.demand ? 0x02 : 0);
  out[2] = p.detectMult;
  out[3] = CONTROL_LENGTH;
  out.writeUInt32BE(p.myDiscriminator >>> 0, 4);
  out.writeUInt32BE(p.yourDiscriminator >>> 0, 8);
  out.writeUInt32BE(p.desiredMinTxInterval >>> 0, 12);
  out.writeUInt32BE(p.requiredMinRxInterval >>> 0, 16);
  out.writeUInt32BE(p.requiredMinEchoRxInterval >>> 0, 20);
  return out;
}

/**
 * RFC 5880 §6.8.6, the checks that need no session: a reason to discard, or the packet. (Your Discriminator and
 * the session state are checked by the session.)
 */
export function decodeControl(b: Uint8Array): ControlPacket | string {
  if (b.length < CONTROL_LENGTH) return `${b.length} octets, shorter than a Control packet`;
  const version = b[0]! >> 5;
  if (version !== BFD_VERSION) return `version ${version}`;
  const length = b[3]!;
  const authenticationPresent = (b[1]! & 0x04) !== 0;
  if (length < (authenticationPresent ? CONTROL_LENGTH + 2 : CONTROL_LENGTH)) return `length field ${length} too small`;
  if (length > b.length) return `length field ${length} beyond the ${b.length} octets received`;
  const detectMult = b[2]!;
  if (detectMult === 0) return 'Detect Mult 0';
  const multipoint = (b[1]! & 0x01) !== 0;
  if (multipoint) return 'Multipoint bit set';
  const view = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const myDiscriminator = view.readUInt32BE(4);
  if (myDiscriminator === 0) return 'My Discriminator 0';
  return {
    version,
    diag: b[0]! & 0x1f,
    state: (b[1]! >> 6) as StateValue,
    poll: (b[1]! & 0x20) !== 0,
    final: (b[1]! & 0x10) !== 0,
    controlPlaneIndependent: (b[1]! & 0x08) !== 0,
    authenticationPresent,
    demand: (b[1]! & 0x02) !== 0,
    multipoint,
    detectMult,
    myDiscriminator,
    yourDiscriminator: view.readUInt32BE(8),
    desiredMinTxInterval: view.readUInt32BE(12),
    requiredMinRxInterval: view.readUInt32BE(16),
    requiredMinEchoRxInterval: view.readUInt32BE(20),
  };
}
