// The cluster context: Namespace and Node objects (here read from a file, as `config validate` does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Namespace, Node } from '../../src/k8s/types.js';
import { classifyObject, readYamlDocuments } from '../../src/config/index.js';
import { valid } from './helpers.js';

test('namespaceSelectors and nodeSelectors resolve against the Namespace and Node objects of the input', () => {
  const { objects, errors } = readYamlDocuments(readFileSync(fileURLToPath(new URL('../fixtures/config/valid-crds.yaml', import.meta.url)), 'utf8'), 'valid-crds.yaml');
  assert.deepEqual(errors, []);
  const config = objects.filter((o) => classifyObject(o).type === 'config');
  const namespaces = objects.filter((o): o is Namespace => o.kind === 'Namespace');
  const nodes = objects.filter((o): o is Node => o.kind === 'Node');
  assert.deepEqual(config.map((o) => o.kind), ['IPAddressPool', 'L2Advertisement']);
  const c = valid(config, { namespaces, nodes });
  assert.deepEqual([...(c.pools[0]?.serviceAllocation?.namespaces ?? [])], ['team-a']);
  assert.deepEqual([...(c.l2Advertisements[0]?.nodes ?? [])], ['worker-1']);
  // Without the context the same config is still valid, but the pool matches no namespace and the ad no node.
  const bare = valid(config);
  assert.equal(bare.pools[0]?.serviceAllocation?.namespaces.size, 0);
  assert.equal(bare.pools[0]?.serviceAllocation?.restrictsNamespaces, true);
  assert.equal(bare.l2Advertisements[0]?.nodes?.size, 0);
});
