// The test helper's registry of namespaces and links (test/helpers/netns.ts): what a Netns made is listed until its
// cleanup, and no longer after it, so that a later sweep never removes names of a run that finished normally (they
// may belong to a live process by then: names are tagged with pid % 10000).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isRoot, Netns, REGISTRY, run } from '../helpers/netns.js';

describe('test Netns registry', { skip: isRoot() ? false : 'needs root' }, () => {
  it('lists a namespace while it exists and forgets it at cleanup', async () => {
    const net = new Netns('tbg-');
    try {
      const ns = net.addNamespace('rg');
      assert.match(readFileSync(net.registryFile, 'utf8'), new RegExp(`^netns ${ns}$`, 'm'));
    } finally {
      await net.cleanup();
    }
    assert.equal(existsSync(net.registryFile), false);
  });

  it('a later Netns sweeps what a dead process listed', async () => {
    const net = new Netns('tbg-');
    // The pid of a process that has exited.
    const dead = join(REGISTRY, `${spawnSync('true').pid}.0`);
    try {
      const ns = net.addNamespace('rh');
      mkdirSync(REGISTRY, { recursive: true });
      writeFileSync(dead, `netns ${ns}\n`);
      new Netns('tbg-');
      assert.equal(existsSync(dead), false);
      assert.doesNotMatch(run('ip', ['netns', 'list']), new RegExp(`^${ns}\\b`, 'm'));
    } finally {
      await net.cleanup();
    }
  });
});
