import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { selectBackend } from '../src/runtime/backend';
import { getTf } from '../src/runtime/tf';
import type * as tfc from '@tensorflow/tfjs-core';

test('wasm: gather trains (its gradient, UnsortedSegmentSum, is provided), with repeated and unused rows', async () => {
  await selectBackend('wasm');
  const tf = getTf();
  assert.equal(tf.getBackend(), 'wasm');
  const x = tf.tensor2d([
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  const idx = tf.tensor1d([2, 0, 2], 'int32');
  const w = tf.tensor2d([
    [1, 10],
    [100, 1000],
    [2, 20],
  ]);
  // d/dx Σ gather(x, idx) ⊙ w: row 2 collects rows 0 and 2 of w, row 0 gets row 1, row 1 nothing
  const g = tf.grad((t: tfc.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), w)))(x);
  assert.deepEqual(g.arraySync(), [
    [100, 1000],
    [0, 0],
    [3, 30],
  ]);
  const seg = tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3, 4]), tf.tensor1d([1, 1, 3, -1], 'int32'), 4);
  assert.deepEqual(seg.arraySync(), [0, 3, 0, 3]);
});
