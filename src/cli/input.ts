// What the offline commands (config validate/convert, dry-run) share: reading `-f` files as multi-document
// YAML, and sorting the objects into MetalLB configuration, the cluster context it needs, and the rest.
import { readFile } from 'node:fs/promises';
import type { KubeObject, Namespace, Node, Secret } from '../k8s/types.js';
import { classifyObject, readYamlDocuments, type ClusterContext } from '../config/index.js';

export const EXIT_OK = 0;
/** A negative answer: invalid configuration, a Service left pending. */
export const EXIT_NEGATIVE = 1;
export const EXIT_USAGE = 2;

/** Where the commands read and write; replaced in tests. */
export interface CommandIO {
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

export const processIO: CommandIO = {
  readFile: (path) => readFile(path, 'utf8'),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  },
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

export const collectRepeated = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export interface SourcedText {
  text: string;
  /** The file name, or `<stdin>` for `-`. */
  source: string;
}

export interface SourcedObject {
  object: KubeObject;
  source: string;
}

/** Reads every file (`-` = stdin); undefined after reporting on stderr when any is unreadable. */
export async function readTexts(files: readonly string[], io: CommandIO, command: string): Promise<SourcedText[] | undefined> {
  const out: SourcedText[] = [];
  let failed = false;
  for (const file of files) {
    const source = file === '-' ? '<stdin>' : file;
    try {
      out.push({ source, text: file === '-' ? await io.readStdin() : await io.readFile(file) });
    } catch (err) {
      io.stderr(`metallb ${command}: cannot read ${source}: ${err instanceof Error ? err.message : String(err)}\n`);
      failed = true;
    }
  }
  return failed ? undefined : out;
}

export interface ReadInputs {
  /** The objects of every document that could be read. */
  objects: SourcedObject[];
  /** False when a file was unreadable or not YAML (already reported on stderr). */
  ok: boolean;
}

/** Reads every file as multi-document YAML, reporting every problem rather than stopping at the first. */
export async function readInputs(files: readonly string[], io: CommandIO, command: string): Promise<ReadInputs> {
  const texts = await readTexts(files, io, command);
  const objects: SourcedObject[] = [];
  let ok = texts !== undefined;
  for (const { text, source } of texts ?? []) {
    const read = readYamlDocuments(text, source);
    for (const e of read.errors) io.stderr(`metallb ${command}: ${e}\n`);
    if (read.errors.length > 0) ok = false;
    for (const object of read.objects) objects.push({ object, source });
  }
  return { objects, ok };
}

export interface SortedInputs {
  /** MetalLB configuration objects (CRDs and legacy ConfigMaps), in input order. */
  config: KubeObject[];
  /** Namespaces, Nodes and Secrets found in the input. */
  context: ClusterContext;
  /** Everything else, for the command to use or ignore. */
  rest: SourcedObject[];
}

export function sortInputs(inputs: readonly SourcedObject[]): SortedInputs {
  const config: KubeObject[] = [];
  const namespaces: Namespace[] = [];
  const nodes: Node[] = [];
  const secrets: Secret[] = [];
  const rest: SourcedObject[] = [];
  for (const input of inputs) {
    const { object } = input;
    if (classifyObject(object).type !== 'other') config.push(object);
    else if (object.kind === 'Namespace') namespaces.push(object);
    else if (object.kind === 'Node') nodes.push(object);
    else if (object.kind === 'Secret') secrets.push(object);
    else rest.push(input);
  }
  return { config, context: { namespaces, nodes, secrets }, rest };
}

/** `Kind namespace/name` for messages, whatever the object holds. */
export function describeObject(o: KubeObject): string {
  const kind = typeof o.kind === 'string' && o.kind ? o.kind : '(no kind)';
  const ns = typeof o.metadata?.namespace === 'string' && o.metadata.namespace ? `${o.metadata.namespace}/` : '';
  const name = typeof o.metadata?.name === 'string' && o.metadata.name ? o.metadata.name : '(unnamed)';
  return `${kind} ${ns}${name}`;
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
