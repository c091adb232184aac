// Public entry of the configuration model.
export * from './types.js';
export { parseConfig, type ClusterContext, type ParseOptions, type ParseResult } from './parse.js';
export { convertLegacyConfigMap, renderObjectsYaml, GENERATED_HEADER } from './convert.js';
export { readYamlDocuments } from './yaml.js';
export { classifyObject, DEFAULT_NAMESPACE, type Classification, type ConfigKind } from './object.js';
export { parseAddress } from './pools.js';
export { parseCommunity, formatCommunity, compareCommunities } from './community.js';
export { parseGoDuration, formatGoDuration } from './duration.js';
export { parseLabelSelector, everything, labelKeyProblem, labelValueProblem } from './selector.js';
