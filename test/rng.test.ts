import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Rng } from '../src/runtime/rng';

test('normals(n) are normal() drawn n times in turn: the same numbers, state and spare after (odd counts, a spare pending, u = 0 drawn again)', () => {
  // [1, 0, 3, 4] and [7, 0, 0, 9]: states whose next draw is 0, which normal() draws again
  for (const seed of [1, 2, 99, Uint32Array.of(1, 0, 3, 4), Uint32Array.of(7, 0, 0, 9)]) {
    const batch = new Rng(seed);
    const turn = new Rng(seed);
    for (const n of [0, 1, 2, 3, 7, 0, 1, 1, 1000, 5, 4, 13]) {
      const got = batch.normals(n);
      const want = Float32Array.from({ length: n }, () => turn.normal());
      assert.deepEqual(got, want, `seed ${seed}, ${n} normals`);
      assert.deepEqual(batch.state(), turn.state(), `seed ${seed}, after ${n} normals`);
      assert.equal(batch.clone().normal(), turn.clone().normal(), `seed ${seed}, the spare after ${n} normals`);
    }
  }
});
