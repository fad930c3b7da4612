import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, slot, type OptionsOf } from '../registry/define';
import { categoricalNll } from '../losses/m2';
import { UserError } from '../errors';
import { collectVariables } from '../nn/network';
import type { ModelBuildContext, Model } from '../contracts';

const classifierOptions = {
  network: slot('network', {
    default: { kind: 'mlp', hidden: [500], activation: 'softplus' },
    description: 'x → class logits (mlp, or conv on images)',
  }),
};
export type ClassifierOptions = OptionsOf<typeof classifierOptions>;

/**
 * The supervised-only baseline: a network x → logits over the C classes, trained with
 * softmax cross-entropy on the labelled examples alone (data.labelled: N → those N rows;
 * without it, every training row). The training loop iterates over the labelled rows only
 * (`trainsOn: 'labelled'`), so an epoch is one pass over them. Terms (batch means over
 * rows with a known label): loss = class = −log softmax(logits)_y, accuracy. The loss
 * weights c1, c2 and alpha do not apply. `classify` serves the accuracy evaluator.
 *
 * It has no latent space (latent = 0): the latent-space methods throw a clear error, and
 * evaluators that need one (reconstructions, samples, latent-classifier, ...) are refused
 * when the config is validated.
 */
export function classifier(o: ClassifierOptions, ctx: ModelBuildContext): Model {
  const tf = ctx.tf;
  const data = ctx.data;
  if (!data.classes || data.classes < 2 || !data.train.y) {
    throw new UserError(
      `the classifier needs a data set with class labels (C ≥ 2); '${data.name}' has ${data.classes || 'none'}`,
      'model (classifier)',
    );
  }
  const C = data.classes;
  const net = ctx.registry.create('network', o.network, {
    ...ctx,
    rng: ctx.rng.fork('network'),
    shape: { inDim: data.dim, outDim: C, inShape: data.shape },
  });
  const { params, buffers } = collectVariables({ network: net });
  const noLatent = (what: string) => (): never => {
    throw new UserError(
      `the classifier model has no latent space (no ${what}); use evaluators that need none (accuracy, elbo)`,
      'model (classifier)',
    );
  };

  return {
    params,
    buffers,
    latent: 0,
    trainsOn: 'labelled',
    terms(batch) {
      const logits = net.apply(batch.x);
      const labels = batch.labels ?? (batch.y ? tf.tensor1d(batch.y, 'int32') : null);
      if (!labels) throw new UserError('the classifier trains on labelled rows; this batch has no labels', 'model (classifier)');
      // rows whose label is unknown (y = −1) count for nothing; on the labelled rows the loop
      // feeds it, and on val/test, every row is known
      const mask = tf.cast(tf.greaterEqual(labels, 0), 'float32') as tfc.Tensor1D;
      const known = tf.maximum(tf.sum(mask), 1) as tfc.Scalar;
      const ce = categoricalNll(logits as tfc.Tensor2D, tf.maximum(labels, tf.zerosLike(labels)) as tfc.Tensor1D);
      const cls = tf.div(tf.sum(tf.mul(ce, mask)), known) as tfc.Scalar;
      const hit = tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32');
      const accuracy = tf.div(tf.sum(tf.mul(hit, mask)), known) as tfc.Scalar;
      return { loss: cls, class: tf.clone(cls) as tfc.Scalar, accuracy };
    },
    classify: (x) => tf.tidy(() => tf.softmax(net.apply(x)) as tfc.Tensor2D),
    encodeMean: noLatent('posterior mean'),
    reconstruct: noLatent('reconstruction'),
    decode: noLatent('decoder'),
    sampleLatent: noLatent('prior to sample'),
    noImportanceWeights: 'the classifier has no latent variables',
  };
}

export const classifierModelPlugin = definePlugin({
  kind: 'model',
  name: 'classifier',
  description:
    'Supervised-only baseline: a network x → softmax over the classes, cross-entropy on the labelled rows only (data.labelled: N, else all); no latent space',
  options: classifierOptions,
  provides: ['classify'],
  termNames: () => ['loss', 'class', 'accuracy'],
  // cross-entropy alone: no weight applies
  weights: {},
  create: classifier,
});
