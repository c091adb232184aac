// A part of the speaker that runs beside the per-Service pipeline with the speaker's client and lifecycle (the BGP
// sessions and their ServiceBGPStatus objects): started after the speaker's own access probes, stopped with it.
import type { AccessReview } from '../k8s/access.js';
import type { KubeClient } from '../k8s/client.js';
import type { Logger } from '../log.js';
import type { OwnerReference } from './status-objects.js';
import type { SpeakerMetrics } from './metrics.js';

export interface SpeakerPartContext {
  client: KubeClient;
  /** The speaker's (and its configuration's) namespace. */
  namespace: string;
  nodeName: string;
  log: Logger;
  access: AccessReview;
  metrics: SpeakerMetrics;
  /** The speaker pod, once known (for ownerReferences). */
  owner(): OwnerReference | undefined;
  /** Aborted when the speaker stops. */
  signal: AbortSignal;
  /** Resolves once every Service has been through the pipeline once after start (nothing decided before is final). */
  firstPass: Promise<void>;
}

export interface SpeakerPart {
  start(ctx: SpeakerPartContext): Promise<void>;
  /** The speaker pod became known: objects written without an owner can get it now. */
  ownerKnown?(): void;
  /** Graceful stop (SIGTERM), concurrent with leaving memberlist. */
  stop(): Promise<void>;
}
