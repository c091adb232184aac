import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SEMI_SPACE_FLAG, tuneSpeakerHeap } from '../../src/speaker/heap.js';

describe('tuneSpeakerHeap', () => {
  it('keeps the young generation from growing unless the operator set a semi-space flag', () => {
    assert.equal(tuneSpeakerHeap([], ''), SEMI_SPACE_FLAG);
    assert.equal(tuneSpeakerHeap(['--max-semi-space-size=4'], ''), undefined);
    assert.equal(tuneSpeakerHeap([], '--enable-source-maps --max_semi_space_size=8'), undefined);
    assert.equal(tuneSpeakerHeap(['--semi-space-growth-factor=2'], ''), undefined);
  });
});
