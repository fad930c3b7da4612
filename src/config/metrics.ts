import { UserError, UserErrors, suggestion } from '../errors';
import type { ExperimentConfig, Mode, PublishedEntry, Verdict, PublishedComparison, PluginRegistry } from '../contracts';

/**
 * Which metrics a config's run writes, as the plugins declare them (evaluators:
 * `metrics(options)`, models: `terms(options)`), and how a measured value compares with a
 * published one. Used to validate `published:` and `train.select`, at the end of
 * `elbo run` and by `elbo compare`.
 */

/** Words that say which direction of a metric is better, checked from the end of its name. */
const MIN_WORDS = ['error', 'err', 'loss', 'nll', 'recon', 'kl', 'mse', 'class'];
const MAX_WORDS = ['accuracy', 'acc', 'likelihood', 'elbo', 'iwae', 'kept'];

/** The rule, for schema descriptions and messages. */
export const MODE_RULE =
  'Default from the metric name: its last word (split at / and _) among error, err, loss, nll, recon, kl, mse, class gives min; among accuracy, acc, likelihood, elbo, iwae, kept gives max; otherwise mode must be given';

/** The better direction a metric's name implies, or undefined when it says nothing. */
export function defaultMode(metric: string): Mode | undefined {
  const words = metric.toLowerCase().split(/[/_]/).reverse();
  for (const w of words) {
    if (MIN_WORDS.includes(w)) return 'min';
    if (MAX_WORDS.includes(w)) return 'max';
  }
  return undefined;
}

/** The configured model's loss terms, or null when its plugin does not declare them. */
export function modelTerms(config: Pick<ExperimentConfig, 'model'>, registry: PluginRegistry): string[] | null {
  const p = registry.has('model', config.model.kind) ? registry.get('model', config.model.kind) : null;
  return p?.termNames ? p.termNames(config.model) : null;
}

/**
 * The validation metrics the training loop writes after every epoch (val/<term> for every
 * loss term but `loss`); null when the model does not declare its terms.
 */
export function validationMetrics(config: Pick<ExperimentConfig, 'model'>, registry: PluginRegistry): string[] | null {
  const terms = modelTerms(config, registry);
  return terms ? terms.filter((t) => t !== 'loss').map((t) => `val/${t}`) : null;
}

/**
 * The metrics every epoch's line of metrics.jsonl holds that a sweep can rank cells by: the
 * training loop's train/<term> (every loss term, and train/grad_norm) and, with a validation
 * split, val/<term>; null when the model does not declare its terms.
 */
export function epochMetrics(config: Pick<ExperimentConfig, 'model' | 'data'>, registry: PluginRegistry): string[] | null {
  const terms = modelTerms(config, registry);
  if (!terms) return null;
  const val = config.data.validation === 0 ? [] : (validationMetrics(config, registry) ?? []);
  return [...terms.map((t) => `train/${t}`), 'train/grad_norm', ...val];
}

/**
 * The test metrics the configured evaluators write: `names` (test/...) from every
 * evaluator that declares them, and the evaluators (index, kind) that do not.
 */
export function evaluatorMetrics(
  config: Pick<ExperimentConfig, 'model' | 'eval'>,
  registry: PluginRegistry,
): { names: string[]; undeclared: string[] } {
  const info = { modelTerms: modelTerms(config, registry) };
  const names = new Set<string>();
  const undeclared: string[] = [];
  config.eval.forEach((e, i) => {
    const p = registry.has('evaluator', e.kind) ? registry.get('evaluator', e.kind) : null;
    const m = p?.metrics ? p.metrics(e, info) : null;
    if (m) m.forEach((n) => names.add(`test/${n}`));
    else undeclared.push(`eval.${i} (${e.kind})`);
  });
  return { names: [...names].sort(), undeclared };
}

/**
 * Check `published:` and `train.select` against what the run writes; fill in each entry's
 * mode from the metric name. Every problem is one located error.
 */
export function checkMetrics(
  config: ExperimentConfig,
  registry: PluginRegistry,
  at: (p: (string | number)[]) => string,
  overridden: string[] = [],
): void {
  const problems: UserError[] = [];
  const published = config.published ?? [];
  if (published.length) {
    const { names, undeclared } = evaluatorMetrics(config, registry);
    const seen = new Set<string>();
    published.forEach((entry: PublishedEntry, i) => {
      const where = ['published', i];
      if (seen.has(entry.metric))
        problems.push(
          new UserError(`published.${i}: '${entry.metric}' is listed twice; give each metric one entry`, at([...where, 'metric'])),
        );
      seen.add(entry.metric);
      const known = names.includes(entry.metric) || (undeclared.length > 0 && entry.metric.startsWith('test/'));
      if (!known) {
        const list = names.length
          ? suggestion(entry.metric, names).replace('(allowed: ', '(the configured evaluators write: ')
          : '; the configured evaluators write no metrics';
        const hint = entry.metric.startsWith('test/') ? '' : ' (published numbers are test metrics: test/...)';
        // an override changed the evaluators: say how to leave the file's published numbers out
        const flags = overridden.filter((f) => /^eval\b/.test(f));
        const fix = flags.length
          ? `; ${flags.join(', ')} changed what this run measures: add --set 'published=[]' to compare with nothing`
          : '';
        problems.push(
          new UserError(
            `published.${i}.metric '${entry.metric}' is not a metric this config's evaluators write${hint}${list}${fix}`,
            at([...where, 'metric']),
          ),
        );
      }
      const mode = entry.mode ?? defaultMode(entry.metric);
      if (!mode && known)
        problems.push(
          new UserError(
            `published.${i}: cannot tell from '${entry.metric}' whether lower or higher is better; add mode: min or mode: max`,
            at(where),
          ),
        );
      else entry.mode = mode;
    });
  }
  const select = config.train.select;
  if (select) {
    const where = ['train', 'select', 'metric'];
    const written = validationMetrics(config, registry);
    if (!select.metric.startsWith('val/')) {
      const list = written ? ` (this model writes: ${written.join(', ')})` : '';
      problems.push(new UserError(`train.select.metric '${select.metric}' must be a validation metric, val/<loss term>${list}`, at(where)));
    } else if (written && !written.includes(select.metric)) {
      problems.push(
        new UserError(
          `train.select.metric '${select.metric}' is not written by model '${config.model.kind}'${suggestion(select.metric, written).replace('(allowed: ', '(it writes: ')}`,
          at(where),
        ),
      );
    } else if (config.data.validation === 0) {
      problems.push(new UserError(`train.select.metric '${select.metric}' needs a validation split, but data.validation is 0`, at(where)));
    }
    const mode = select.mode ?? defaultMode(select.metric);
    if (!mode)
      problems.push(
        new UserError(
          `train.select: cannot tell from '${select.metric}' whether lower or higher is better; add mode: min or mode: max`,
          at(['train', 'select']),
        ),
      );
    else select.mode = mode;
  }
  if (problems.length) throw new UserErrors(problems);
}

/**
 * How a measured value compares with a published entry: within when
 * |measured − value| ≤ tolerance (the entry's pm, else `spread`: the std over seeds, 0 for
 * one run), else better or worse by the entry's mode; missing when nothing was measured.
 */
export function verdict(
  measured: number | undefined,
  entry: Pick<PublishedEntry, 'value' | 'pm' | 'mode' | 'metric'>,
  spread = 0,
): Verdict {
  if (measured === undefined || !Number.isFinite(measured)) return 'missing';
  const tolerance = entry.pm ?? spread;
  if (Math.abs(measured - entry.value) <= tolerance) return 'within';
  const mode = entry.mode ?? defaultMode(entry.metric) ?? 'max';
  return (mode === 'min' ? measured < entry.value : measured > entry.value) ? 'better' : 'worse';
}

export function comparePublished(published: PublishedEntry[] | undefined, metrics: Record<string, number>): PublishedComparison[] {
  return (published ?? []).map((e) => ({ ...e, measured: metrics[e.metric] ?? null, verdict: verdict(metrics[e.metric], e) }));
}

/** `11.97 ± 1.71` */
export function formatPublished(e: Pick<PublishedEntry, 'value' | 'pm'>): string {
  return e.pm !== undefined ? `${e.value} ± ${e.pm}` : String(e.value);
}
