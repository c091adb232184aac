// `metallb config validate` and `metallb config convert`: offline checks of MetalLB configuration files.
// Exit codes (see main.ts): 0 valid / converted, 1 invalid configuration, 2 usage error or unreadable input.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { KubeObject, Namespace, Node, Secret } from '../k8s/types.js';
import {
  classifyObject, convertLegacyConfigMap, formatConfigError, parseConfig, readYamlDocuments, renderObjectsYaml,
  DEFAULT_NAMESPACE, type Config, type ConfigError,
} from '../config/index.js';

export const EXIT_OK = 0;
export const EXIT_INVALID = 1;
export const EXIT_USAGE = 2;

/** Where the commands read and write; replaced in tests. */
export interface CommandIO {
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIO: CommandIO = {
  readFile: (path) => readFile(path, 'utf8'),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  },
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

interface SourcedObject {
  object: KubeObject;
  source: string;
}

/** Reads every file (`-` = stdin) as multi-document YAML; undefined after reporting when any is unreadable. */
async function readInputs(files: readonly string[], io: CommandIO, command: string): Promise<SourcedObject[] | undefined> {
  const out: SourcedObject[] = [];
  let failed = false;
  for (const file of files) {
    const source = file === '-' ? '<stdin>' : file;
    let text: string;
    try {
      text = file === '-' ? await io.readStdin() : await io.readFile(file);
    } catch (err) {
      io.stderr(`metallb ${command}: cannot read ${source}: ${err instanceof Error ? err.message : String(err)}\n`);
      failed = true;
      continue;
    }
    const read = readYamlDocuments(text, source);
    for (const e of read.errors) io.stderr(`metallb ${command}: ${e}\n`);
    if (read.errors.length > 0) failed = true;
    for (const object of read.objects) out.push({ object, source });
  }
  return failed ? undefined : out;
}

const describeObject = (o: KubeObject): string => {
  const kind = typeof o.kind === 'string' && o.kind ? o.kind : '(no kind)';
  const ns = typeof o.metadata?.namespace === 'string' ? `${o.metadata.namespace}/` : '';
  const name = typeof o.metadata?.name === 'string' ? o.metadata.name : '(unnamed)';
  return `${kind} ${ns}${name}`;
};

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

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
  if (!inputs) return EXIT_USAGE;
  const config: KubeObject[] = [];
  const namespaces: Namespace[] = [];
  const nodes: Node[] = [];
  const secrets: Secret[] = [];
  for (const { object, source } of inputs) {
    const c = classifyObject(object);
    if (c.type !== 'other') config.push(object);
    else if (object.kind === 'Namespace') namespaces.push(object);
    else if (object.kind === 'Node') nodes.push(object);
    else if (object.kind === 'Secret') secrets.push(object);
    else io.stderr(`warning: ${source}: ignoring ${describeObject(object)}: not a MetalLB config object\n`);
  }
  if (config.length === 0) io.stderr('warning: no MetalLB config objects found in the input\n');
  const result = parseConfig(config, { namespaces, nodes, secrets }, { namespace: opts.namespace });
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
    inputs = [];
    for (const file of opts.filename) {
      const source = file === '-' ? '<stdin>' : file;
      try {
        const text = file === '-' ? await io.readStdin() : await io.readFile(file);
        inputs.push({ source, object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config', namespace: opts.namespace }, data: { config: text } } as KubeObject });
      } catch (err) {
        io.stderr(`metallb config convert: cannot read ${source}: ${err instanceof Error ? err.message : String(err)}\n`);
        return EXIT_USAGE;
      }
    }
  } else {
    inputs = await readInputs(opts.filename, io, 'config convert');
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

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('offline checks and conversions of MetalLB configuration files');

  config.command('validate')
    .description('validate MetalLB configuration (CRDs and/or a legacy ConfigMap) as the controller would, without a cluster')
    .requiredOption('-f, --filename <file>', 'YAML file with one or more documents; repeatable; "-" reads stdin', collect)
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
    .requiredOption('-f, --filename <file>', 'YAML file holding the ConfigMap; "-" reads stdin', collect)
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
