import * as fs from 'fs';
import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, Type, type OptionsOf } from '../registry/define';
import { rows } from './evaluator';
import { UserError } from '../errors';
import type { Model, Split } from '../contracts';

const accuracyOptions = {
  split: Enum(['test', 'val'], { default: 'test', description: 'Which split to classify' }),
  batch_size: Type.Integer({ minimum: 1, default: 1000 }),
};
export type AccuracyOptions = OptionsOf<typeof accuracyOptions>;

/** Confusion matrix [true class][predicted class] of argmax classify(x) over a split. */
export function confusionMatrix(tf: typeof tfc, model: Model, split: Split, dim: number, classes: number, batch: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array(classes).fill(0));
  for (let start = 0; start < split.n; start += batch) {
    const end = Math.min(split.n, start + batch);
    const pred = tf.tidy(() => tf.argMax(model.classify!(rows(tf, split, dim, start, end)), 1).dataSync());
    for (let i = 0; i < end - start; i++) m[split.y![start + i]][pred[i]]++;
  }
  return m;
}

/**
 * Classification of the test split by the model's own classifier (argmax of
 * `model.classify`, e.g. M2's q(y|x)): test/accuracy (a fraction), test/error_pct (the
 * error in percent, as Kingma et al. report it), and artifacts/confusion.json.
 */
export const accuracyEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'accuracy',
  needs: ['classify'],
  description:
    "Accuracy and error (%) of the model's classifier (argmax classify(x), e.g. M2's q(y|x)) on the test split; artifacts/confusion.json",
  options: accuracyOptions,
  metrics: (o) => {
    const prefix = o.split === 'test' ? '' : `${o.split}_`;
    return [`${prefix}accuracy`, `${prefix}error_pct`];
  },
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      if (!model.classify) {
        throw new UserError(
          'the accuracy evaluator needs a model that classifies (m2, m1m2, gvae, ...); this model has no classify(x)',
          'eval: accuracy',
        );
      }
      const split = o.split === 'val' ? data.val : data.test;
      if (!split) throw new UserError('split: val needs data.validation > 0', 'eval: accuracy');
      if (!split.y || !data.classes) throw new UserError(`the ${o.split} split has no labels`, 'eval: accuracy');
      const matrix = confusionMatrix(tf, model, split, data.dim, data.classes, o.batch_size);
      const correct = matrix.reduce((s, row, c) => s + row[c], 0);
      const accuracy = correct / split.n;
      const perClass = matrix.map((row, c) => {
        const n = row.reduce((a, b) => a + b, 0);
        return n ? row[c] / n : null;
      });
      fs.writeFileSync(
        ctx.artifact(o.split === 'test' ? 'confusion.json' : `confusion-${o.split}.json`),
        JSON.stringify(
          {
            split: o.split,
            examples: split.n,
            accuracy,
            error_pct: 100 * (1 - accuracy),
            per_class_accuracy: perClass,
            rows: 'true class',
            columns: 'predicted class',
            matrix,
          },
          null,
          1,
        ),
      );
      const prefix = o.split === 'test' ? '' : `${o.split}_`;
      return { [`${prefix}accuracy`]: accuracy, [`${prefix}error_pct`]: 100 * (1 - accuracy) };
    },
  }),
});
