// The HorizontalPodAutoscaler resource of the dev API server: stored as autoscaling/v2, also served as
// autoscaling/v1 (converted both ways), with kube-apiserver's defaults and validation.
import type { ResourceType } from '../registry.js';
import { hpaV1ToV2, hpaV2ToV1 } from './hpa-conversion.js';
import { defaultHPA, normalizeHPAStatus, validateHPA } from './hpa-strategy.js';

export function extendHPA(rt: ResourceType): void {
  rt.versions.push({ name: 'v1', statusSubresource: true, convert: { toStorage: hpaV1ToV2, fromStorage: hpaV2ToV1 } });
  rt.strategy = {
    prepare(o, old) {
      defaultHPA(o);
      // a create starts with the status kube-apiserver shows for a new HPA; an update keeps the stored one
      if (!old) normalizeHPAStatus(o);
      return validateHPA(o);
    },
    prepareStatus(o) {
      normalizeHPAStatus(o);
      return [];
    },
  };
}
