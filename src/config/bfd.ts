// BFDProfile. MetalLB's native BGP mode rejects every BFDProfile; our speaker implements BFD, so we accept them
// with the FRR-mode rules (ranges below, unique names).
import type { BFDProfile } from './types.js';
import { checkKnownFields, optBool, optInt } from './fields.js';
import { readSpec, type Envelope } from './object.js';

/** Ranges from the CRD and MetalLB's bfdIntFromConfig; defaults are FRR's (what MetalLB ends up with when unset). */
const INTEGER_FIELDS = {
  receiveInterval: { min: 10, max: 60000, default: 300 },
  transmitInterval: { min: 10, max: 60000, default: 300 },
  detectMultiplier: { min: 2, max: 255, default: 3 },
  echoInterval: { min: 10, max: 60000, default: 50 },
  minimumTtl: { min: 1, max: 254, default: 254 },
} as const;
type IntegerField = keyof typeof INTEGER_FIELDS;

const SPEC_FIELDS = [...Object.keys(INTEGER_FIELDS), 'echoMode', 'passiveMode'];

export interface ParsedBFDProfile {
  env: Envelope;
  profile: BFDProfile;
}

export function parseBFDProfile(env: Envelope): ParsedBFDProfile {
  const { report } = env;
  const spec = readSpec(env, false) ?? {};
  checkKnownFields(spec, SPEC_FIELDS, 'spec', report);
  const value = (field: IntegerField): number => {
    const r = INTEGER_FIELDS[field];
    return optInt(spec, field, 'spec', report, r) ?? r.default;
  };
  const profile: BFDProfile = {
    name: env.name,
    receiveInterval: value('receiveInterval'),
    transmitInterval: value('transmitInterval'),
    detectMultiplier: value('detectMultiplier'),
    echoInterval: value('echoInterval'),
    echoMode: optBool(spec, 'echoMode', 'spec', report) ?? false,
    passiveMode: optBool(spec, 'passiveMode', 'spec', report) ?? false,
    minimumTtl: value('minimumTtl'),
  };
  return { env, profile };
}
