// `metallb lab` refusals that need no running cluster: not root, no lab, address ranges in use, remains of a lab.
// Uses its own lab name ("clit") so it never touches a real lab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { BIN, labSkip, metallb, runCmd } from '../helpers/lab.js';
import { makePlan } from '../../src/lab/plan.js';

const NAME = 'clit';
const plan = makePlan({ name: NAME, nodes: 1 });

test('lab commands need root, and say so', { skip: process.getuid?.() !== 0 ? 'needs root to drop to nobody' : false }, async () => {
  for (const sub of [['up'], ['down'], ['exec', 'client', '--', 'true']]) {
    const r = await runCmd('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'lab', ...sub, '--name', NAME]);
    assert.equal(r.code, 1, `${sub.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /needs root/);
  }
  assert.ok(!existsSync(plan.stateDir));
});

test('status, exec and node add without a lab: a clear error, exit 1', async () => {
  const st = await metallb(['lab', 'status', '--name', NAME]);
  assert.equal(st.code, 1);
  assert.match(st.stderr, /no lab "clit" is up .*`metallb lab up --name clit`/);
  const j = await metallb(['lab', 'status', '-o', 'json', '--name', NAME]);
  assert.equal(j.code, 1);
  assert.equal(j.stdout, '');
});

test('bad arguments are usage errors (exit 2)', async () => {
  for (const args of [
    ['lab', 'up', '--nodes', '0'],
    ['lab', 'up', '--nodes', 'x'],
    ['lab', 'up', '--name', 'Bad-Name'],
    ['lab', 'status', '-o', 'yaml'],
  ]) {
    const r = await metallb(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /error: option/);
  }
});

test('lab up refuses when its address ranges are in use on the host, and makes nothing', { skip: labSkip }, async (t) => {
  // Not named with the lab's prefix (that alone would be "remains of a lab"): an unrelated link holding an address.
  t.after(async () => {
    await runCmd('ip', ['link', 'del', 'mlbclitx0']);
  });
  const added = await runCmd('ip', ['link', 'add', 'mlbclitx0', 'type', 'bridge']);
  assert.equal(added.code, 0, added.stderr);
  await runCmd('ip', ['addr', 'add', `${plan.lan.ipv4.replace('.0/24', '.77')}/32`, 'dev', 'mlbclitx0']);
  const r = await metallb(['lab', 'up', '--name', NAME, '--nodes', '1']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`address ranges are in use.*\\n.*${plan.lan.ipv4.replace(/\./g, '\\.')}: address ${plan.lan.ipv4.replace('.0/24', '.77').replace(/\./g, '\\.')}/32 on mlbclitx0`));
  assert.ok(!existsSync(plan.stateDir), 'no state dir made');
  const ns = await runCmd('ip', ['netns', 'list']);
  assert.ok(!ns.stdout.includes(plan.prefix), ns.stdout);
});

test('lab up refuses when remains of the lab are on the host; lab down removes them', { skip: labSkip }, async (t) => {
  const ns = `${plan.prefix}node1`;
  t.after(async () => {
    await runCmd('ip', ['netns', 'del', ns]);
  });
  assert.equal((await runCmd('ip', ['netns', 'add', ns])).code, 0);
  const r = await metallb(['lab', 'up', '--name', NAME, '--nodes', '1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /remains of lab "clit" are on this host:\n {2}network namespaces mlbclit-node1\n`metallb lab down --name clit` removes them/);
  const down = await metallb(['lab', 'down', '--name', NAME]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, /removed: 1 namespaces/);
  assert.ok(!(await runCmd('ip', ['netns', 'list'])).stdout.includes(ns));
  const again = await metallb(['lab', 'down', '--name', NAME]);
  assert.equal(again.code, 0);
  assert.match(again.stderr, /nothing to remove/);
});
