import type { WeightDeclaration } from '../contracts';
/**
 * The loss weights of the source write-ups (docs/models.md "Shared pieces"): c1 multiplies
 * the KL term, c2 the reconstruction term, alpha the classification term. A model plugin
 * declares the ones its `terms` reads (`weights: standardWeights('c1', 'c2')`) and may
 * declare new ones beside them (`{...standardWeights('c1'), beta_tc: {default, description}}`):
 * the config's `loss:` section, the training loop, the compiled step and the evaluators
 * take every declared name from there. Models that declare nothing read these three.
 */
export const STANDARD_WEIGHTS = {
  c1: { default: 1, description: 'Weight of the KL term (beta in a beta-VAE)' },
  c2: { default: 1, description: 'Weight of the reconstruction term' },
  alpha: { default: 0, description: 'Weight of the classification term (models with labels)' },
} satisfies Record<string, WeightDeclaration>;

export type StandardWeight = keyof typeof STANDARD_WEIGHTS;

/** The declarations of some standard weights, for a model plugin's `weights`. */
export function standardWeights(...names: StandardWeight[]): Record<string, WeightDeclaration> {
  return Object.fromEntries(names.map((n) => [n, STANDARD_WEIGHTS[n]]));
}

/** The weights a model plugin's `terms` reads: its declaration, else the standard three. */
export function weightNames(plugin: { weights?: Record<string, WeightDeclaration> }): string[] {
  return Object.keys(plugin.weights ?? STANDARD_WEIGHTS);
}
