// A third-party elbo data set written from docs/plugins.md: 8×8 binary images of bars, the
// classic toy data for latent-variable models. Each image shows `bars` random rows (class 0,
// horizontal) or columns (class 1, vertical), with pixel noise. Generated from the run's
// seed (ctx.rng), so every run with one seed sees the same images; nothing is downloaded.
//   plugins: [./plugins/bars]
//   data: { kind: bars, train: 2000, test: 500 }
'use strict';

const crypto = require('crypto');
const SIDE = 8;

module.exports = {
  kind: 'dataset',
  name: 'bars',
  description: 'Generated 8×8 binary images of horizontal (class 0) or vertical (class 1) bars, from the run seed',
  schema: {
    properties: {
      train: { type: 'integer', minimum: 1, default: 2000, description: 'Training images' },
      test: { type: 'integer', minimum: 1, default: 500, description: 'Test images' },
      bars: { type: 'integer', minimum: 1, maximum: SIDE, default: 2, description: 'Bars per image' },
      noise: { type: 'number', minimum: 0, maximum: 0.5, default: 0.02, description: 'Probability that a pixel is flipped' },
    },
  },
  create(o, ctx) {
    const make = (n, rng) => {
      const x = new Float32Array(n * SIDE * SIDE);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const vertical = rng.int(2);
        y[i] = vertical;
        const lines = rng.permutation(SIDE).subarray(0, o.bars);
        for (const l of lines) for (let j = 0; j < SIDE; j++) x[i * SIDE * SIDE + (vertical ? j * SIDE + l : l * SIDE + j)] = 1;
        const flips = rng.uniforms(SIDE * SIDE);
        for (let p = 0; p < SIDE * SIDE; p++) if (flips[p] < o.noise) x[i * SIDE * SIDE + p] = 1 - x[i * SIDE * SIDE + p];
      }
      return { x, y, n };
    };
    const train = make(o.train, ctx.rng.fork('train'));
    const test = make(o.test, ctx.rng.fork('test'));
    const sha256 = crypto.createHash('sha256').update(Buffer.from(train.x.buffer)).update(Buffer.from(test.x.buffer)).digest('hex');
    return {
      name: 'bars',
      shape: [SIDE, SIDE, 1],
      dim: SIDE * SIDE,
      classes: 2,
      train,
      val: null,
      test,
      sha256,
      source: `generated (bars ${o.bars}, noise ${o.noise})`,
      binarize: 'none',
      labelled: null,
    };
  },
};
