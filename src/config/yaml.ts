// Multi-document YAML → Kubernetes objects. Generic (the dry-run command reads Service files with it too).
import { isCollection, LineCounter, parseAllDocuments, Parser, visit, type Document } from 'yaml';
import type { KubeObject } from '../k8s/types.js';
import { isRecord } from './fields.js';

export interface YamlReadResult {
  objects: KubeObject[];
  /** `source:line:col: message`, one per problem. */
  errors: string[];
}

/**
 * Every document of `text` that is a mapping becomes an object; `kind: List` documents contribute their
 * `items`; empty documents are skipped. Syntax errors and non-mapping documents are reported with positions.
 */
export function readYamlDocuments(text: string, source: string): YamlReadResult {
  const lineCounter = new LineCounter();
  const objects: KubeObject[] = [];
  const errors: string[] = [];
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${source}:${line}:${col}`;
  };
  const deep = tooDeep(text);
  if (deep !== undefined) {
    errors.push(`${source}:${deep.line}:${deep.col}: ${deep.message}`);
    return { objects, errors };
  }
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // parseAllDocuments returns an EmptyStream (no documents) for empty input.
  if (!Array.isArray(docs)) return { objects, errors };
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) errors.push(`${at(e.pos[0])}: ${yamlErrorMessage(e)}`);
      return;
    }
    const contents = doc.contents;
    if (contents === null) return; // empty document
    const start = contents.range?.[0] ?? 0;
    let value: unknown;
    try {
      const keys = collectionKeys(doc);
      if (keys.length > 0) {
        for (const k of keys) errors.push(`${at(k.offset)}: ${k.message}`);
        return;
      }
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (err) {
      // toJS throws on alias bombs and similar; keep the contract of never throwing.
      errors.push(`${at(start)}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (value === null || value === undefined) return;
    if (!isRecord(value)) {
      errors.push(`${at(start)}: document ${i + 1} is not a Kubernetes object (a YAML mapping), got ${Array.isArray(value) ? 'a list' : `a ${typeof value}`}`);
      return;
    }
    if (value.kind === 'List' && 'items' in value) {
      const items = value.items;
      if (!Array.isArray(items)) {
        errors.push(`${at(start)}: document ${i + 1} is a List whose items is not a list`);
        return;
      }
      items.forEach((item, j) => {
        if (isRecord(item)) objects.push(item as KubeObject);
        else errors.push(`${at(start)}: item ${j + 1} of the List in document ${i + 1} is not an object`);
      });
      return;
    }
    objects.push(value as KubeObject);
  });
  return { objects, errors };
}

/** The first line of a YAML error, without the library's position (callers add theirs); stack overflows in plain words. */
export function yamlErrorMessage(e: { code: string; message: string }): string {
  if (e.code === 'RESOURCE_EXHAUSTION') return 'lists or mappings are nested too deeply';
  return e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? e.message;
}

/**
 * Mapping keys that are lists or mappings. JSON (and so Kubernetes) has only string keys; the yaml library would
 * stringify them with a process warning, so they are reported instead. Scalar keys (`1: x`) read as strings.
 */
export function collectionKeys(doc: Document): { offset: number; message: string }[] {
  const found: { offset: number; message: string }[] = [];
  visit(doc, {
    Pair(_key, pair) {
      if (isCollection(pair.key)) {
        found.push({ offset: pair.key.range?.[0] ?? 0, message: 'a mapping key must be a string, got a list or mapping' });
      }
    },
  });
  return found;
}

const MAX_DEPTH = 1000;
const TOO_DEEP = `lists or mappings are nested too deeply (more than ${MAX_DEPTH} levels)`;
const COLLECTION_TOKENS = new Set(['block-map', 'block-seq', 'flow-collection']);

/**
 * Offset of the first list or mapping nested more than MAX_DEPTH levels, found on the parser's tokens without
 * recursion. The yaml library composes documents recursively: on absurd nesting it overflows the stack, which it
 * mostly catches but which can also abort the process (V8 fails to compile a regular expression without stack).
 */
export function tooDeep(text: string): { line: number; col: number; message: string } | undefined {
  for (const token of new Parser().parse(text)) {
    const stack: { node: unknown; depth: number }[] = [{ node: token, depth: 0 }];
    for (let top = stack.pop(); top; top = stack.pop()) {
      const { node } = top;
      if (!isRecord(node)) continue;
      const depth = typeof node.type === 'string' && COLLECTION_TOKENS.has(node.type) ? top.depth + 1 : top.depth;
      if (depth > MAX_DEPTH) {
        const offset = typeof node.offset === 'number' ? node.offset : 0;
        const before = text.slice(0, offset);
        return { line: before.split('\n').length, col: offset - before.lastIndexOf('\n'), message: TOO_DEEP };
      }
      stack.push({ node: node.value, depth });
      if (Array.isArray(node.items)) {
        for (const item of node.items) if (isRecord(item)) stack.push({ node: item.key, depth }, { node: item.value, depth });
      }
    }
  }
  return undefined;
}
