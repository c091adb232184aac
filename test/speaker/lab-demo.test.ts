// The README's main job, `scripts/lab-demo.sh`, end to end (root): lab up, MetalLB's tutorial (Deployment scaled
// to 3, exposed), curl EXTERNAL-IP from the client answered by several pods, the announcing node's cable cut and the
// requests answered through another node, the cable back and the address taken back. The script fails when any of
// that does not happen; it takes the lab-test lock like every lab test and removes its lab even when it fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { acquireLabLock, labSkip, metallb, ROOT, runCmd, TEST_LAB } from '../helpers/lab.js';

const skip = labSkip
  ?? (TEST_LAB !== 'lab' ? 'the demo script uses the default lab name' : undefined)
  ?? (spawnSync('sh', ['-c', 'command -v arping']).status === 0 ? false : 'arping is not installed');

test('scripts/lab-demo.sh: the tutorial in the lab, the owner\'s cable cut and traffic continuing', { skip }, async () => {
  const release = await acquireLabLock();
  try {
    await metallb(['lab', 'down'], { timeoutMs: 120_000 });
    const r = await runCmd('bash', [join(ROOT, 'scripts', 'lab-demo.sh')], { timeoutMs: 20 * 60_000 });
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 0, out.slice(-4000));
    // Several pods answered through the EXTERNAL-IP (echo-hname answers with the pod's name).
    const tutorial = out.slice(out.indexOf('the EXTERNAL-IP'), out.indexOf('Who answers for'));
    const pods = new Set([...tutorial.matchAll(/lb-hname-pods-[a-z0-9]+-[a-z0-9]+/g)].map((m) => m[0]));
    assert.ok(pods.size >= 2, `several pods answered:\n${tutorial}`);
    assert.match(out, /Cutting node\d's cable/);
    assert.match(out, /now announced by node\d \(MAC [0-9a-f:]{17}\)/);
    assert.match(out, /\+\s*\d+ ms {2}lb-hname-pods-/);
  } finally {
    await metallb(['lab', 'down'], { timeoutMs: 120_000 });
    release();
  }
});
