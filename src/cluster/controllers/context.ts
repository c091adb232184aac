// What each controller of the controller-manager gets: the API client, shared informers, writes, events, logs.
import type { Logger } from '../../log.js';
import type { KubeClient } from '../../k8s/client.js';
import { EventRecorder, type EventSink } from '../../k8s/events.js';
import { InformerFactory } from '../common/runtime.js';
import { ObjectWriter } from '../common/writer.js';

export interface ControllerContext {
  client: KubeClient;
  log: Logger;
  informers: InformerFactory;
  writer: ObjectWriter;
  /** An event recorder reporting as `component` (e.g. `deployment-controller`, as upstream names its sources). */
  recorder(component: string): EventSink;
  /** Reconciles run at once per controller. */
  workers: number;
  /** Recorders to flush on shutdown. */
  flushEvents(): Promise<void>;
}

export function createContext(client: KubeClient, log: Logger, workers = 2): ControllerContext {
  const recorders: EventRecorder[] = [];
  return {
    client,
    log,
    informers: new InformerFactory(client, log),
    writer: new ObjectWriter(client),
    recorder(component) {
      const r = new EventRecorder(client, log, { component });
      recorders.push(r);
      return r;
    },
    workers,
    flushEvents: async () => {
      await Promise.all(recorders.map((r) => r.flush()));
    },
  };
}
