// events.k8s.io/v1 Events are a view of core/v1 Events (one storage, like kube-apiserver): conversions and
// the field-selector label mapping.
import { isObj, type Obj } from './util.js';

function compact(o: Obj): Obj {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/** core/v1 Event (storage) → events.k8s.io/v1 Event */
export function coreToEventsV1(e: Obj): Obj {
  const source = isObj(e.source) ? e.source : undefined;
  return compact({
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: e.metadata,
    eventTime: e.eventTime ?? null,
    series: e.series,
    reportingController: e.reportingComponent ?? source?.component,
    reportingInstance: e.reportingInstance ?? source?.host,
    action: e.action,
    reason: e.reason,
    regarding: e.involvedObject,
    related: e.related,
    note: e.message,
    type: e.type,
    deprecatedSource: source,
    deprecatedFirstTimestamp: e.firstTimestamp,
    deprecatedLastTimestamp: e.lastTimestamp,
    deprecatedCount: e.count,
  });
}

/** events.k8s.io/v1 Event → core/v1 Event (storage) */
export function eventsV1ToCore(e: Obj): Obj {
  const series = isObj(e.series) ? e.series : undefined;
  const source = isObj(e.deprecatedSource)
    ? e.deprecatedSource
    : typeof e.reportingController === 'string'
      ? compact({ component: e.reportingController, host: typeof e.reportingInstance === 'string' ? e.reportingInstance : undefined })
      : undefined;
  return compact({
    apiVersion: 'v1',
    kind: 'Event',
    metadata: e.metadata,
    involvedObject: e.regarding ?? {},
    reason: e.reason,
    message: e.note,
    source,
    firstTimestamp: e.deprecatedFirstTimestamp,
    lastTimestamp: e.deprecatedLastTimestamp,
    count: e.deprecatedCount ?? series?.count,
    type: e.type,
    eventTime: e.eventTime ?? undefined,
    series,
    action: e.action,
    related: e.related,
    reportingComponent: e.reportingController,
    reportingInstance: e.reportingInstance,
  });
}

/** events.k8s.io field labels → the stored core/v1 fields. */
export function eventsV1FieldLabel(label: string): string {
  if (label.startsWith('regarding.')) return `involvedObject.${label.slice('regarding.'.length)}`;
  if (label === 'reportingController') return 'reportingComponent';
  if (label === 'note') return 'message';
  return label;
}
