// autoscaling/v2 HorizontalPodAutoscaler, the fields the controller reads and writes.
import type { Obj } from '../../common/types.js';
import type { Behavior } from './normalize.js';

export interface MetricTarget {
  type: 'Utilization' | 'Value' | 'AverageValue';
  value?: string;
  averageValue?: string;
  averageUtilization?: number;
}

export interface MetricIdentifier {
  name: string;
  selector?: unknown;
}

export interface CrossVersionObjectReference {
  apiVersion?: string;
  kind: string;
  name: string;
}

export interface MetricSpec {
  type: 'Object' | 'Pods' | 'Resource' | 'ContainerResource' | 'External';
  object?: { describedObject: CrossVersionObjectReference; metric: MetricIdentifier; target: MetricTarget };
  pods?: { metric: MetricIdentifier; target: MetricTarget };
  resource?: { name: string; target: MetricTarget };
  containerResource?: { name: string; container: string; target: MetricTarget };
  external?: { metric: MetricIdentifier; target: MetricTarget };
}

export interface MetricValueStatus {
  value?: string;
  averageValue?: string;
  averageUtilization?: number;
}

/** A metric's status; `{ type: '' }` for one that could not be computed, as upstream leaves it. */
export interface MetricStatus {
  type: MetricSpec['type'] | '';
  object?: { describedObject: CrossVersionObjectReference; metric: MetricIdentifier; current: MetricValueStatus };
  pods?: { metric: MetricIdentifier; current: MetricValueStatus };
  resource?: { name: string; current: MetricValueStatus };
  containerResource?: { name: string; container: string; current: MetricValueStatus };
  external?: { metric: MetricIdentifier; current: MetricValueStatus };
}

export interface HPACondition {
  type: 'AbleToScale' | 'ScalingActive' | 'ScalingLimited';
  status: 'True' | 'False' | 'Unknown';
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface HPAStatus {
  observedGeneration?: number;
  lastScaleTime?: string;
  currentReplicas?: number;
  desiredReplicas: number;
  currentMetrics: MetricStatus[] | null;
  conditions?: HPACondition[];
}

export interface HPA extends Obj {
  spec: {
    scaleTargetRef: CrossVersionObjectReference;
    minReplicas?: number;
    maxReplicas: number;
    metrics?: MetricSpec[];
    behavior?: Behavior;
  };
  status?: HPAStatus;
}

export interface Scale extends Obj {
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}
