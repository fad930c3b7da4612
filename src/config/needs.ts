import type { Registry } from '../registry/registry';
import type { ExperimentConfig } from './types';

/**
 * Evaluators whose `needs` the model plugin does not `provide` (e.g. reconstructions on
 * the classifier, which has no latent space): one problem per evaluator, with the path of
 * its `kind`, so a config is refused when it is validated, not after training. A model
 * plugin that declares no `provides` is not checked here (its evaluators fail at the
 * end of the run if they cannot work).
 */
export function unmetEvaluatorNeeds(config: ExperimentConfig, registry: Registry): { path: (string | number)[]; message: string }[] {
  const model = registry.has('model', config.model.kind) ? registry.get('model', config.model.kind) : null;
  if (!model?.provides) return [];
  const has = new Set(model.provides);
  const what: Record<string, string> = {
    latent: 'a model with a latent space (encodeMean, decode)',
    classify: 'a model that classifies (classify(x))',
  };
  return config.eval.flatMap((e, i) => {
    const ev = registry.has('evaluator', e.kind) ? registry.get('evaluator', e.kind) : null;
    const missing = (ev?.needs ?? []).filter((c) => !has.has(c));
    return missing.length
      ? [{
          path: ['eval', i, 'kind'],
          message: `the ${e.kind} evaluator needs ${missing.map((c) => what[c]).join(' and ')}; model '${config.model.kind}' has ${missing.length > 1 ? 'neither' : 'none'} (it provides: ${model.provides!.join(', ') || 'nothing'})`,
        }]
      : [];
  });
}
