// `metallb config validate` and `metallb config convert`: offline checks of MetalLB configuration files.
// Exit codes (see main.ts): 0 valid / converted, 1 invalid configuration, 2 usage error or unreadable input.
import type { Command } from 'commander';
import type { KubeObject } from '../k8s/types.js';
import {
  classifyObject, convertLegacyConfigMap, formatConfigError, parseConfig, renderObjectsYaml,
  DEFAULT_NAMESPACE, type Config, type ConfigError,
} from '../config/index.js';
import {
  EXIT_NEGATIVE as EXIT_INVALID, EXIT_OK, EXIT_USAGE, collectRepeated, describeObject, plural, processIO, readInputs, readTexts,
  sortInputs, type CommandIO, type SourcedObject,
} from './input.js';

export function summarizeConfig(c: Config): string {
  return [
    plural(c.pools.length, 'pool'),
    plural(c.l2Advertisements.length, 'L2Advertisement'),
    plural(c.bgpAdvertisements.length, 'BGPAdvertisement'),
    plural(c.peers.length, 'BGPPeer'),
    plural(c.bfdProfiles.size, 'BFDProfile'),
    plural(c.communities.size, 'community alias', 'community aliases'),
  ].join(', ');
}

export interface ValidateOptions {
  filename: string[];
  namespace: string;
}

export async function runValidate(opts: ValidateOptions, io: CommandIO = processIO): Promise<number> {
  const inputs = await readInputs(opts.filename, io, 'config validate');
  if (!inputs.ok) return EXIT_USAGE;
  const { config, context, rest } = sortInputs(inputs.objects);
  for (const { object, source } of rest) io.stderr(`warning: ${source}: ignoring ${describeObject(object)}: not a MetalLB config object\n`);
  if (config.length === 0) io.stderr('warning: no MetalLB config objects found in the input\n');
  const result = parseConfig(config, context, { namespace: opts.namespace });
  for (const w of result.warnings ?? []) io.stderr(`warning: ${formatConfigError(w)}\n`);
  if (!result.config) {
    for (const e of result.errors) io.stderr(`${formatConfigError(e)}\n`);
    io.stderr(`invalid: ${plural(result.errors.length, 'error')}\n`);
    return EXIT_INVALID;
  }
  io.stdout(`valid: ${summarizeConfig(result.config)}\n`);
  return EXIT_OK;
}

export interface ConvertOptions {
  filename: string[];
  namespace: string;
  onlyData: boolean;
}

export async function runConvert(opts: ConvertOptions, io: CommandIO = processIO): Promise<number> {
  let inputs: SourcedObject[] | undefined;
  if (opts.onlyData) {
    // The file holds only the ConfigMap's `config` value, as with MetalLB's generator `-only-data`.
    const texts = await readTexts(opts.filename, io, 'config convert');
    inputs = texts?.map(({ text, source }) => ({
      source,
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config', namespace: opts.namespace }, data: { config: text } } as KubeObject,
    }));
  } else {
    const read = await readInputs(opts.filename, io, 'config convert');
    inputs = read.ok ? read.objects : undefined;
  }
  if (!inputs) return EXIT_USAGE;
  const configMaps = inputs.filter(({ object }) => object.kind === 'ConfigMap' && classifyObject(object).type === 'config');
  for (const { object, source } of inputs) {
    if (!configMaps.some((c) => c.object === object)) io.stderr(`warning: ${source}: ignoring ${describeObject(object)}: not a legacy MetalLB ConfigMap (kind ConfigMap with data.config)\n`);
  }
  if (configMaps.length === 0) {
    io.stderr('metallb config convert: no legacy MetalLB ConfigMap (kind: ConfigMap with a data.config key) in the input\n');
    return EXIT_INVALID;
  }
  const errors: ConfigError[] = [];
  const objects: KubeObject[] = [];
  for (const { object } of configMaps) {
    // A ConfigMap without a namespace is taken to be in --namespace, for the generated objects too.
    const converted = convertLegacyConfigMap(object.metadata?.namespace ? object : { ...object, metadata: { ...object.metadata, namespace: opts.namespace } });
    errors.push(...converted.errors);
    objects.push(...converted.objects);
    for (const w of converted.warnings ?? []) io.stderr(`warning: ${formatConfigError(w)}\n`);
  }
  // Like the generator, check that the result is a usable config; errors point back at the ConfigMap fields.
  if (errors.length === 0) {
    const ns = configMaps[0]?.object.metadata?.namespace;
    const parsed = parseConfig(configMaps.map((c) => c.object), { namespaces: [], nodes: [], secrets: [] }, { namespace: typeof ns === 'string' && ns ? ns : opts.namespace });
    errors.push(...parsed.errors);
  }
  if (errors.length > 0) {
    for (const e of errors) io.stderr(`${formatConfigError(e)}\n`);
    io.stderr(`invalid: ${plural(errors.length, 'error')}\n`);
    return EXIT_INVALID;
  }
  io.stdout(renderObjectsYaml(objects));
  return EXIT_OK;
}

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('offline checks and conversions of MetalLB configuration files');

  config.command('validate')
    .description('validate MetalLB configuration (CRDs and/or a legacy ConfigMap) as the controller would, without a cluster')
    .requiredOption('-f, --filename <file>', 'YAML file with one or more documents; repeatable; "-" reads stdin', collectRepeated)
    .option('-n, --namespace <namespace>', 'MetalLB namespace (objects without one are taken to be in it)', DEFAULT_NAMESPACE)
    .addHelpText('after', `
Input: any mix of metallb.io IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer (v1beta1, v1beta2),
BFDProfile, Community, and the legacy ConfigMap (data.config). Namespace, Node and Secret objects in the files
are used to resolve namespaceSelectors, nodeSelectors and passwordSecret; other kinds are ignored with a warning.

Exit status: 0 valid (summary on stdout), 1 invalid (one error per line on stderr), 2 usage error or unreadable input.

Examples:
  $ metallb config validate -f examples/config.yaml
  $ metallb config validate -f pools.yaml -f ads.yaml -f namespaces.yaml
  $ kubectl get ipaddresspools,l2advertisements -n metallb-system -o yaml | metallb config validate -f -`)
    .action(async (opts: ValidateOptions) => {
      process.exitCode = await runValidate(opts);
    });

  config.command('convert')
    .description("convert a legacy MetalLB ConfigMap (<= v0.12) to the equivalent CRDs (MetalLB's configmaptocrs)")
    .requiredOption('-f, --filename <file>', 'YAML file holding the ConfigMap; "-" reads stdin', collectRepeated)
    .option('-n, --namespace <namespace>', 'namespace for the CRDs when the ConfigMap has none', DEFAULT_NAMESPACE)
    .option('--only-data', "the file holds only the ConfigMap's data.config value", false)
    .addHelpText('after', `
Prints the CRDs as multi-document YAML on stdout. The result is validated like "config validate"; errors point at
the ConfigMap fields (e.g. "data.config: address-pools[0].addresses[1]").

Exit status: 0 converted, 1 invalid legacy configuration, 2 usage error or unreadable input.

Examples:
  $ metallb config convert -f examples/legacy-configmap.yaml > crds.yaml
  $ kubectl get configmap config -n metallb-system -o yaml | metallb config convert -f - | kubectl apply -f -`)
    .action(async (opts: ConvertOptions) => {
      process.exitCode = await runConvert(opts);
    });
}
