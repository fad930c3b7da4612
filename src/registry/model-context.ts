import { UserError } from '../errors';
import {
  END_OF_TRAINING,
  type GivenContext,
  type LatentParts,
  type LatentPartsOptions,
  type Model,
  type ModelContext,
  type Prior,
} from '../contracts';

/**
 * What the registry adds around a model plugin's `create`: the context's `latentParts`
 * helper, a record of the priors created with that context, and, for a third-party model
 * that has none, a `scheduled` made from those priors'. And what it adds around every
 * prior: `progress` filled in when a caller omits it.
 */

/** Builds an encoder → z → decoder model's parts (models/vae.ts latentParts); createRegistry hands it to the registry. */
export type LatentPartsBuilder = (options: LatentPartsOptions, ctx: GivenContext<'model'>) => LatentParts;

/**
 * The priors created with a model's context. The key travels with every copy a plugin
 * makes by spreading its context (`{ ...ctx, rng, latent }`), which is how a prior's
 * context reaches the registry, so the prior is recorded wherever the model creates it.
 */
const PRIORS = Symbol('elbo.model-priors');

/** A model's context as the registry gives it to the plugin's `create`, and the list its priors are recorded in. */
export function modelContext(
  given: GivenContext<'model'>,
  builder: LatentPartsBuilder | undefined,
): { ctx: ModelContext; priors: Prior[] } {
  const priors: Prior[] = [];
  const ctx: ModelContext & { [PRIORS]: Prior[] } = {
    ...given,
    [PRIORS]: priors,
    latentParts(options) {
      if (!builder)
        throw new UserError(
          'ctx.latentParts is missing: this registry was made with new Registry() without a latentParts builder; make it with createRegistry()',
        );
      return builder(options, ctx);
    },
  };
  return { ctx, priors };
}

/** Note a prior in the record of the model context its `ctx` was spread from, if any. */
export function recordPrior(ctx: unknown, prior: Prior): void {
  const list = (ctx as { [PRIORS]?: Prior[] } | null | undefined)?.[PRIORS];
  if (Array.isArray(list)) list.push(prior);
}

/**
 * A third-party model without `scheduled` whose priors have scheduled quantities (a
 * spike-slab prior whose c is a schedule) gets theirs, merged: a compiled step then feeds
 * them to its graph as it does for the built-in models, instead of freezing them into it.
 * Two priors with a quantity of the same name cannot share one `progress.scheduled`: refused.
 */
export function withPriorSchedules(model: Model, priors: Prior[], plugin: { name: string; file: string }): void {
  if (model.scheduled) return;
  const scheduling = priors.filter((p) => typeof p.scheduled === 'function');
  if (!scheduling.length) return;
  let names: string[];
  try {
    names = scheduling.flatMap((p) => Object.keys(p.scheduled!(END_OF_TRAINING)));
  } catch (e) {
    throw new UserError(
      `model plugin '${plugin.name}' (${plugin.file}): the scheduled() of a prior it created failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
      plugin.file,
    );
  }
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) {
    throw new UserError(
      `model plugin '${plugin.name}' (${plugin.file}) has ${scheduling.length} priors that schedule a quantity named '${twice}' and no scheduled(progress) of its own: give its model one that returns each under its own name (docs/plugins.md, Model.scheduled)`,
      plugin.file,
    );
  }
  model.scheduled = (progress) => Object.assign({}, ...scheduling.map((p) => p.scheduled!(progress)));
}

/**
 * `prior` whose `sample` and `kl` take END_OF_TRAINING for a `progress` their caller
 * omits (schedules at their end values, as evaluation has them), so a prior plugin
 * always receives one.
 */
export function withDefaultProgress(prior: Prior): Prior {
  const { sample, kl } = prior;
  const filled: Pick<Prior, 'sample' | 'kl'> = {
    sample: (enc, K, rng, progress, share) => sample.call(prior, enc, K, rng, progress ?? END_OF_TRAINING, share),
    kl: (enc, K, progress, z) => kl.call(prior, enc, K, progress ?? END_OF_TRAINING, z),
  };
  if (Object.isFrozen(prior)) return Object.create(prior, { sample: { value: filled.sample }, kl: { value: filled.kl } }) as Prior;
  return Object.assign(prior, filled);
}
