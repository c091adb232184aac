// BGP-4 messages as data: what the parser yields and the serializer writes (RFC 4271 §4 and the extensions we speak).
// Prefixes are kept in text form (`10.0.0.0/24`, `fd00::/64`): tests and logs read them, and the hot path
// (UpdatePacker) writes NLRI bytes directly, so nothing slow depends on it.

export const MARKER_LENGTH = 16;
export const HEADER_LENGTH = 19; // RFC 4271 §4.1
export const MAX_MESSAGE_LENGTH = 4096; // RFC 4271 §4.1; larger only with RFC 8654, which we do not offer
export const BGP_VERSION = 4;
export const AS_TRANS = 23456; // RFC 6793 §2
export const DEFAULT_PORT = 179;

export const MessageType = {
  OPEN: 1, // RFC 4271 §4.2
  UPDATE: 2, // RFC 4271 §4.3
  NOTIFICATION: 3, // RFC 4271 §4.5
  KEEPALIVE: 4, // RFC 4271 §4.4
  ROUTE_REFRESH: 5, // RFC 2918 §3
} as const;

/** Minimum length of each message type, header included (RFC 4271 §6.1). */
export const MIN_LENGTH: Readonly<Record<number, number>> = {
  [MessageType.OPEN]: 29,
  [MessageType.UPDATE]: 23,
  [MessageType.NOTIFICATION]: 21,
  [MessageType.KEEPALIVE]: 19,
  [MessageType.ROUTE_REFRESH]: 23,
};

export const AFI = { IPV4: 1, IPV6: 2 } as const; // IANA address family numbers
export const SAFI = { UNICAST: 1 } as const;

export const OptionalParameterType = {
  CAPABILITIES: 2, // RFC 5492 §4
  EXTENDED_LENGTH: 255, // RFC 9072 §2: the non-extended type octet that announces extended lengths
} as const;

export const CapabilityCode = {
  MULTIPROTOCOL: 1, // RFC 4760 §8
  ROUTE_REFRESH: 2, // RFC 2918 §2
  EXTENDED_MESSAGE: 6, // RFC 8654
  GRACEFUL_RESTART: 64, // RFC 4724 §3
  FOUR_OCTET_AS: 65, // RFC 6793 §3
  ADD_PATH: 69, // RFC 7911
  ENHANCED_ROUTE_REFRESH: 70, // RFC 7313 §3
} as const;

export const AttrType = {
  ORIGIN: 1, // RFC 4271 §5.1.1
  AS_PATH: 2, // RFC 4271 §5.1.2
  NEXT_HOP: 3, // RFC 4271 §5.1.3
  MULTI_EXIT_DISC: 4, // RFC 4271 §5.1.4
  LOCAL_PREF: 5, // RFC 4271 §5.1.5
  ATOMIC_AGGREGATE: 6, // RFC 4271 §5.1.6
  AGGREGATOR: 7, // RFC 4271 §5.1.7
  COMMUNITIES: 8, // RFC 1997
  ORIGINATOR_ID: 9, // RFC 4456
  CLUSTER_LIST: 10, // RFC 4456
  MP_REACH_NLRI: 14, // RFC 4760 §3
  MP_UNREACH_NLRI: 15, // RFC 4760 §4
  EXTENDED_COMMUNITIES: 16, // RFC 4360
  AS4_PATH: 17, // RFC 6793 §3
  AS4_AGGREGATOR: 18, // RFC 6793 §3
  LARGE_COMMUNITY: 32, // RFC 8092 §3
} as const;

export const AttrFlag = {
  OPTIONAL: 0x80,
  TRANSITIVE: 0x40,
  PARTIAL: 0x20,
  EXTENDED_LENGTH: 0x10,
} as const; // RFC 4271 §4.3

export const Origin = { IGP: 0, EGP: 1, INCOMPLETE: 2 } as const;
export const AsPathSegmentType = { AS_SET: 1, AS_SEQUENCE: 2, AS_CONFED_SEQUENCE: 3, AS_CONFED_SET: 4 } as const; // RFC 4271 §4.3, RFC 5065

export const ErrorCode = {
  MESSAGE_HEADER: 1,
  OPEN_MESSAGE: 2,
  UPDATE_MESSAGE: 3,
  HOLD_TIMER_EXPIRED: 4,
  FSM: 5,
  CEASE: 6,
  ROUTE_REFRESH_MESSAGE: 7, // RFC 7313 §5
} as const; // RFC 4271 §4.5

export const HeaderSubcode = { CONNECTION_NOT_SYNCHRONIZED: 1, BAD_MESSAGE_LENGTH: 2, BAD_MESSAGE_TYPE: 3 } as const;
export const OpenSubcode = {
  UNSPECIFIC: 0,
  UNSUPPORTED_VERSION_NUMBER: 1,
  BAD_PEER_AS: 2,
  BAD_BGP_IDENTIFIER: 3,
  UNSUPPORTED_OPTIONAL_PARAMETER: 4,
  UNACCEPTABLE_HOLD_TIME: 6,
  UNSUPPORTED_CAPABILITY: 7, // RFC 5492 §5
} as const;
export const UpdateSubcode = {
  MALFORMED_ATTRIBUTE_LIST: 1,
  UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: 2,
  MISSING_WELL_KNOWN_ATTRIBUTE: 3,
  ATTRIBUTE_FLAGS_ERROR: 4,
  ATTRIBUTE_LENGTH_ERROR: 5,
  INVALID_ORIGIN_ATTRIBUTE: 6,
  INVALID_NEXT_HOP_ATTRIBUTE: 8,
  OPTIONAL_ATTRIBUTE_ERROR: 9,
  INVALID_NETWORK_FIELD: 10,
  MALFORMED_AS_PATH: 11,
} as const;
export const FsmSubcode = {
  UNSPECIFIED: 0,
  UNEXPECTED_IN_OPENSENT: 1, // RFC 6608 §4
  UNEXPECTED_IN_OPENCONFIRM: 2,
  UNEXPECTED_IN_ESTABLISHED: 3,
} as const;
export const CeaseSubcode = {
  MAXIMUM_PREFIXES: 1, // RFC 4486 §4
  ADMINISTRATIVE_SHUTDOWN: 2,
  PEER_DECONFIGURED: 3,
  ADMINISTRATIVE_RESET: 4,
  CONNECTION_REJECTED: 5,
  OTHER_CONFIGURATION_CHANGE: 6,
  CONNECTION_COLLISION_RESOLUTION: 7,
  OUT_OF_RESOURCES: 8,
  HARD_RESET: 9, // RFC 8538
  BFD_DOWN: 10, // RFC 9384
} as const;
export const RouteRefreshSubcode = { INVALID_MESSAGE_LENGTH: 1 } as const; // RFC 7313 §5
export const RouteRefreshSubtype = { NORMAL: 0, BEGIN: 1, END: 2 } as const; // RFC 7313 §3.2

export type Capability =
  | { kind: 'multiprotocol'; afi: number; safi: number }
  | { kind: 'route-refresh' }
  | { kind: 'enhanced-route-refresh' }
  | {
      kind: 'graceful-restart';
      /** The R bit: the sender has restarted (RFC 4724 §3). */
      restartState: boolean;
      /** The N bit (RFC 8538 §2): the sender handles NOTIFICATIONs with graceful restart. */
      notification: boolean;
      /** Seconds, 12 bits. */
      restartTime: number;
      families: readonly { afi: number; safi: number; forwardingState: boolean }[];
    }
  | { kind: 'four-octet-as'; asn: number }
  | { kind: 'unknown'; code: number; value: Uint8Array };

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The 2-octet field: AS_TRANS when the real ASN needs 4 octets (then carried by the four-octet-as capability). */
  myAutonomousSystem: number;
  holdTime: number;
  /** Dotted quad. */
  bgpIdentifier: string;
  capabilities: readonly Capability[];
}

export interface AsPathSegment {
  type: number;
  asns: readonly number[];
}

export type PathAttribute =
  | { kind: 'origin'; flags: number; origin: number }
  | { kind: 'as-path'; flags: number; segments: readonly AsPathSegment[] }
  | { kind: 'next-hop'; flags: number; nextHop: string }
  | { kind: 'multi-exit-disc'; flags: number; value: number }
  | { kind: 'local-pref'; flags: number; value: number }
  | { kind: 'atomic-aggregate'; flags: number }
  | { kind: 'aggregator'; flags: number; asn: number; address: string }
  | { kind: 'communities'; flags: number; communities: readonly number[] }
  | { kind: 'mp-reach-nlri'; flags: number; afi: number; safi: number; nextHops: readonly string[]; nlri: readonly string[] }
  | { kind: 'mp-unreach-nlri'; flags: number; afi: number; safi: number; withdrawnRoutes: readonly string[] }
  | { kind: 'as4-path'; flags: number; segments: readonly AsPathSegment[] }
  | { kind: 'large-communities'; flags: number; communities: readonly (readonly [number, number, number])[] }
  | { kind: 'other'; flags: number; typeCode: number; value: Uint8Array };

export interface UpdateMessage {
  type: 'update';
  withdrawnRoutes: readonly string[];
  pathAttributes: readonly PathAttribute[];
  nlri: readonly string[];
  /**
   * RFC 7606: problems that did not reset the session. `treat-as-withdraw` turns the UPDATE's NLRI into withdrawals
   * (§2); `attribute-discard` dropped one attribute (§2). Only present when something was wrong.
   */
  errors?: readonly UpdateErrorNote[];
}

export interface UpdateErrorNote {
  action: 'treat-as-withdraw' | 'attribute-discard';
  /** The attribute type code concerned, when there is one. */
  typeCode?: number;
  reason: string;
}

export interface NotificationMessage {
  type: 'notification';
  errorCode: number;
  errorSubcode: number;
  data: Uint8Array;
}

export interface KeepaliveMessage {
  type: 'keepalive';
}

export interface RouteRefreshMessage {
  type: 'route-refresh';
  afi: number;
  /** RFC 7313 §3.2 message subtype (the former Reserved octet). */
  subtype: number;
  safi: number;
}

export type Message = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

/** The attribute flags a well-formed attribute of a known type carries (Optional and Transitive bits only). */
export const EXPECTED_FLAGS: Readonly<Record<number, number>> = {
  [AttrType.ORIGIN]: AttrFlag.TRANSITIVE,
  [AttrType.AS_PATH]: AttrFlag.TRANSITIVE,
  [AttrType.NEXT_HOP]: AttrFlag.TRANSITIVE,
  [AttrType.MULTI_EXIT_DISC]: AttrFlag.OPTIONAL,
  [AttrType.LOCAL_PREF]: AttrFlag.TRANSITIVE,
  [AttrType.ATOMIC_AGGREGATE]: AttrFlag.TRANSITIVE,
  [AttrType.AGGREGATOR]: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE,
  [AttrType.COMMUNITIES]: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE,
  [AttrType.ORIGINATOR_ID]: AttrFlag.OPTIONAL,
  [AttrType.CLUSTER_LIST]: AttrFlag.OPTIONAL,
  [AttrType.MP_REACH_NLRI]: AttrFlag.OPTIONAL,
  [AttrType.MP_UNREACH_NLRI]: AttrFlag.OPTIONAL,
  [AttrType.EXTENDED_COMMUNITIES]: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE,
  [AttrType.AS4_PATH]: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE,
  [AttrType.AS4_AGGREGATOR]: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE,
  [AttrType.LARGE_COMMUNITY]: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE,
};

/** Names of error codes and subcodes, for logs (RFC 4271 §4.5 and the registries' later additions). */
export function describeNotification(code: number, subcode: number): string {
  const codes: Record<number, [string, Record<number, string>]> = {
    1: ['Message Header Error', { 1: 'Connection Not Synchronized', 2: 'Bad Message Length', 3: 'Bad Message Type' }],
    2: ['OPEN Message Error', {
      0: 'Unspecific', 1: 'Unsupported Version Number', 2: 'Bad Peer AS', 3: 'Bad BGP Identifier',
      4: 'Unsupported Optional Parameter', 6: 'Unacceptable Hold Time', 7: 'Unsupported Capability', 11: 'Role Mismatch',
    }],
    3: ['UPDATE Message Error', {
      1: 'Malformed Attribute List', 2: 'Unrecognized Well-known Attribute', 3: 'Missing Well-known Attribute',
      4: 'Attribute Flags Error', 5: 'Attribute Length Error', 6: 'Invalid ORIGIN Attribute', 8: 'Invalid NEXT_HOP Attribute',
      9: 'Optional Attribute Error', 10: 'Invalid Network Field', 11: 'Malformed AS_PATH',
    }],
    4: ['Hold Timer Expired', {}],
    5: ['Finite State Machine Error', {
      0: 'Unspecified', 1: 'Unexpected Message in OpenSent', 2: 'Unexpected Message in OpenConfirm', 3: 'Unexpected Message in Established',
    }],
    6: ['Cease', {
      1: 'Maximum Number of Prefixes Reached', 2: 'Administrative Shutdown', 3: 'Peer De-configured', 4: 'Administrative Reset',
      5: 'Connection Rejected', 6: 'Other Configuration Change', 7: 'Connection Collision Resolution', 8: 'Out of Resources',
      9: 'Hard Reset', 10: 'BFD Down',
    }],
    7: ['ROUTE-REFRESH Message Error', { 1: 'Invalid Message Length' }],
  };
  const entry = codes[code];
  if (!entry) return `error code ${code}, subcode ${subcode}`;
  const sub = entry[1][subcode];
  return sub ? `${entry[0]} / ${sub}` : subcode === 0 ? entry[0] : `${entry[0]} / subcode ${subcode}`;
}
