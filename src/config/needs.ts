import type { ModelCapability, Plugin, ExperimentConfig, PluginOptions, PluginRegistry } from '../contracts';

const WHAT: Record<ModelCapability, string> = {
  latent: 'a model with a latent space (encodeMean, decode)',
  classify: 'a model that classifies (classify(x))',
  density: 'a model with a density for importance weights (log p(x, z) − log q(z|x))',
  'class-conditional': 'a class-conditional decoder (decodeClass(z, y): m2, m1m2)',
};

/**
 * What a model plugin offers for these options (its `provides` list, or what its
 * `capabilities` says for them), and why it lacks what it lacks; null when the plugin
 * declares neither.
 */
export function modelCapabilities(
  plugin: Plugin | null,
  options: PluginOptions,
  registry: PluginRegistry,
): { provides: ModelCapability[]; why: Partial<Record<ModelCapability, string>> } | null {
  if (plugin?.capabilities) {
    const out = plugin.capabilities(options, { registry });
    return { provides: out.provides, why: out.why ?? {} };
  }
  return plugin?.provides ? { provides: plugin.provides, why: {} } : null;
}

/**
 * Evaluators whose `needs` the model plugin does not `provide` (e.g. reconstructions on
 * the classifier, which has no latent space; iwae on a spike-and-slab prior, which has no
 * density): one problem per evaluator, with the path of its `kind`, so a config is refused
 * when it is validated, not after training. A model plugin that declares neither `provides`
 * nor `capabilities` is not checked here (its evaluators fail at the end of the run if they
 * cannot work).
 */
export function unmetEvaluatorNeeds(config: ExperimentConfig, registry: PluginRegistry): { path: (string | number)[]; message: string }[] {
  const model = registry.has('model', config.model.kind) ? registry.get('model', config.model.kind) : null;
  const caps = modelCapabilities(model, config.model, registry);
  if (!caps) return [];
  const has = new Set(caps.provides);
  return config.eval.flatMap((e, i) => {
    const ev = registry.has('evaluator', e.kind) ? registry.get('evaluator', e.kind) : null;
    const missing = (ev?.needs ?? []).filter((c) => !has.has(c));
    if (!missing.length) return [];
    const why = missing.map((c) => caps.why[c]).filter(Boolean);
    return [
      {
        path: ['eval', i, 'kind'],
        message: `the ${e.kind} evaluator needs ${missing.map((c) => WHAT[c]).join(' and ')}; model '${config.model.kind}' ${why.length ? `has ${missing.length > 1 ? 'neither' : 'none'} here: ${why.join('; ')}` : `has ${missing.length > 1 ? 'neither' : 'none'} (it provides: ${caps.provides.join(', ') || 'nothing'})`}`,
      },
    ];
  });
}
