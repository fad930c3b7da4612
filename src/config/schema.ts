import { numberOrSchedule, slot, weight } from '../registry/define';
import { MODE_RULE } from './metrics';
import { STANDARD_WEIGHTS } from '../registry/weights';
import { PLUGIN_KINDS, JsonSchema, PluginKind, type PluginRegistry } from '../contracts';

/**
 * train.draws when the config does not say (src/train/step.ts). 'host': measured against
 * 'graph' on the quickstart VAE and the bench's workloads, TensorFlow's generator took as
 * much CPU per step as the JavaScript draws it replaces (0.96–1.02× the CPU, medians), so
 * the host's draws stay, and with them compiled and eager steps that train on the same numbers.
 */
export const DEFAULT_DRAWS: 'host' | 'graph' = 'host';

/** Longest experiment (and sweep) name: it is a directory name, and file systems take 255 bytes. */
export const EXPERIMENT_NAME_MAX = 200;

/** Backends a config or --backend may name; 'auto' picks the fastest installed. */
export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;

/**
 * The top-level config schema. Everything that varies by plugin is a slot
 * (`#/definitions/<kind>`) whose branches come from the registry, so the schema that
 * validates a config, the one `elbo schema` prints and the list `elbo plugins` shows
 * are one and the same.
 */
export function buildSchema(registry: PluginRegistry): JsonSchema {
  const definitions: Record<string, JsonSchema> = {};
  for (const kind of PLUGIN_KINDS) definitions[kind] = kindSchema(registry, kind);
  // weights scale loss terms: a negative one would reward the term it weighs
  definitions.weight = numberOrSchedule(
    { minimum: 0 },
    { description: 'A number, or a schedule plugin ({kind: linear, ...}) evaluated every step' },
  );
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://elbo.dev/schema/config.json',
    title: 'elbo experiment config',
    type: 'object',
    additionalProperties: false,
    required: ['data', 'model'],
    properties: {
      experiment: {
        type: 'string',
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
        // a directory name (runs/<experiment>/): file systems take 255 bytes
        maxLength: EXPERIMENT_NAME_MAX,
        default: 'default',
        description: 'Experiment name: runs are stored under <runs-dir>/<experiment>/<runId>',
      },
      seed: { type: 'integer', minimum: 0, maximum: 4294967295, default: 0, description: 'Drives every random draw of the run' },
      backend: { enum: [...BACKENDS], default: 'auto', description: 'TensorFlow.js backend; auto picks the fastest installed' },
      // no default: a config without it resolves (and hashes) as it did before the key existed
      device: {
        enum: ['auto', 'cpu', 'gpu'],
        description:
          'Where the tensorflow backend computes (absent: auto, the GPU when its GPU build is installed and sees one): gpu refuses to start unless it can train on a GPU (npm run setup:native -- --gpu; see elbo env); cpu hides the GPUs. --device overrides it',
      },
      // read by the loader, which composes the file with its bases before validating: never in a
      // resolved config, and refused in --set
      extends: {
        anyOf: [
          { type: 'string', minLength: 1 },
          { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        ],
        description:
          "Base config(s) this file builds on, relative to it: their keys merged in order, then this file's over them (mappings merge key by key, lists and values replace); the run records the composed config. Relative paths inside (plugins, data files) are read against the directory of the config given to elbo run",
      },
      plugins: {
        type: 'array',
        items: { type: 'string' },
        default: [],
        description: 'Third-party plugins: paths (relative to this file, then the current directory) or npm package names',
      },
      data: slot('dataset', { description: 'The data set' }),
      model: slot('model', { description: 'The model (its latent size, prior and networks are model options)' }),
      loss: {
        type: 'object',
        additionalProperties: false,
        default: {},
        description:
          'Loss weights by name (docs/models.md "Objectives"): the standard c1, c2, alpha and whatever the registered models declare; each model reads the ones it declares',
        properties: Object.fromEntries(
          Object.entries({ ...STANDARD_WEIGHTS, ...registry.weights() }).map(([name, d]) => [name, weight(d.default, d.description)]),
        ),
      },
      train: trainSchema(),
      eval: {
        type: 'array',
        items: slot('evaluator'),
        default: [{ kind: 'elbo' }, { kind: 'reconstructions' }],
        description: 'Evaluations run on the test split after training',
      },
      published: publishedSchema(),
      tracking: {
        type: 'array',
        items: slot('tracker'),
        default: [],
        description: 'Trackers besides the local run store, which is always on',
      },
    },
    definitions,
  };
}

/** `train`: the loop, the optimizer, clipping, model selection, compilation and draws. */
function trainSchema(): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      epochs: {
        type: 'integer',
        minimum: 1,
        maximum: 1000000,
        default: 10,
        description: 'Passes over the training split (at most 1,000,000)',
      },
      batch_size: { type: 'integer', minimum: 1, default: 128 },
      optimizer: slot('optimizer', { default: { kind: 'adam' } }),
      log_every: {
        type: 'integer',
        minimum: 1,
        default: 25,
        description: 'Steps between reading losses back from the device (progress, NaN check)',
      },
      steps_per_epoch: {
        type: 'integer',
        minimum: 1,
        description: 'Cap on steps per epoch (default: one pass over the training split)',
      },
      labelled_per_batch: {
        type: 'integer',
        minimum: 0,
        default: 0,
        description:
          'Semi-supervised data: L labelled examples added to every batch of batch_size rows (so every step takes L labelled rows and about batch_size unlabelled ones, L independent of batch_size; 0: labelled rows only appear in their natural proportion). Without data.labelled (every row labelled), or for a model that trains on its labelled rows alone, it does nothing and the run warns',
      },
      labelled_draw: {
        enum: ['cycle', 'replacement'],
        default: 'cycle',
        description:
          'How labelled_per_batch rows are drawn: cycle goes through the labelled set in a fresh order every epoch (every label equally often); replacement draws each row uniformly and independently (as sampling a labelled batch per step). Both from the run seed',
      },
      clip: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        description:
          "Gradient clipping before the optimizer's update (as Lightning's gradient_clip_val/_algorithm): norm rescales all gradients together when their global L2 norm exceeds it, value then clamps each gradient component to [−value, value]; either or both. train/grad_norm logs the norm before clipping",
        properties: {
          norm: { type: 'number', exclusiveMinimum: 0, description: 'Largest global L2 norm of the gradients (clip_grad_norm_)' },
          value: { type: 'number', exclusiveMinimum: 0, description: 'Largest absolute value of a gradient component (clip_grad_value_)' },
        },
      },
      weight_decay: {
        type: 'number',
        minimum: 0,
        default: 0,
        description:
          "λ: λ·θ is added to every parameter's gradient after clipping (the gradient of λ/2·‖θ‖², i.e. a Gaussian prior N(0, 1/λ) on the weights of a per-example loss; coupled as PyTorch's Adam weight_decay, not AdamW). A N(0, 1) prior on the weights of a model trained on N examples is λ = 1/N",
      },
      swa: {
        type: 'object',
        additionalProperties: false,
        required: ['from_epoch'],
        description:
          "Stochastic weight averaging (Izmailov et al. 2018; PyTorch's AveragedModel, Lightning's StochasticWeightAveraging): from epoch from_epoch on, the equal-weight mean of the model's parameters (and buffers) at the end of every epoch since is what validation, train.select, the test evaluators and elbo export measure; training goes on from the raw parameters. Checkpointed (average/model/...), so a resumed run averages on exactly",
        properties: {
          from_epoch: {
            type: 'integer',
            minimum: 1,
            maximum: { $data: '2/epochs' },
            description: 'The first epoch (1-based) whose end-of-epoch parameters enter the average; at most train.epochs',
          },
        },
      },
      checkpoint_keep: { type: 'integer', minimum: 1, default: 2, description: 'How many epoch checkpoints to keep' },
      select: {
        type: 'object',
        additionalProperties: false,
        required: ['metric'],
        description:
          'Model selection on validation: after every epoch keep the parameters with the best value of `metric` so far in checkpoints/best/ (never pruned), and run the evaluators on them instead of on the last epoch; run.json records `selected` and `evaluated_on`. Absent: the evaluators run on the last epoch',
        properties: {
          metric: {
            type: 'string',
            description:
              'A validation metric the training loop writes for this model: val/<loss term>, e.g. val/elbo, val/accuracy (m2, m1m2); needs data.validation > 0',
          },
          mode: {
            enum: ['min', 'max'],
            description: `min keeps the lowest value, max the highest (ties keep the earlier epoch). ${MODE_RULE}`,
          },
        },
      },
      compile: {
        enum: ['auto', 'off', 'xla'],
        default: 'auto',
        description:
          "tensorflow backend: auto runs each training step, and the batches of the evaluations (loss terms, IWAE, latent encodings), as one TensorFlow graph when a trace shows that is exact (else kernel by kernel, with the step's reason in run.json step_modes); off always runs kernel by kernel; xla as auto, and XLA compiles the training step's graph for this CPU (faster where elementwise work on large tensors dominates, e.g. IWAE with k samples: BENCHMARKS.md; the evaluations as auto)",
      },
      step_state: {
        enum: ['session', 'fed'],
        description:
          "tensorflow backend, compiled step: where the parameters, buffers and optimizer state live between steps. session (when unset): inside the step's TensorFlow session, Adam's update as TensorFlow's fused kernel (ResourceApplyAdam), copied back at each epoch's end; fed: fed in and returned every step, Adam as the eager step computes it (bit for bit the eager step's numbers, and those of runs made before 2026-12-05; Adam's moments differ from session's in the float32 rounding of 1 − β)",
      },
      draws: {
        enum: ['host', 'graph'],
        default: DEFAULT_DRAWS,
        description:
          "Where a training step's random draws (the reparameterisation noise, and dynamic binarisation) are made. graph: each step draws from its own stream, keyed by the run seed, the epoch and the step number; a compiled step makes them inside its TensorFlow graph (counter-based Philox), an eager step in JavaScript: the same distributions, not the same numbers. host: in JavaScript, in order from the epoch's streams, fed to the graph: compiled and eager steps (train.compile: off) train on the same numbers",
      },
    },
  };
}

/** `published`: the numbers a config aims at, that elbo run and elbo compare measure against. */
function publishedSchema(): JsonSchema {
  return {
    type: 'array',
    description:
      'Published numbers this config aims at: `elbo run` ends by printing measured against published (and records it in run.json), `elbo compare` adds the published value and a verdict per row. [] says that no published number applies',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['metric', 'value', 'source'],
      properties: {
        metric: {
          type: 'string',
          description:
            'A test metric as the run records it (test/error_pct, test/log_likelihood_k5000), one that the configured evaluators write',
        },
        value: {
          type: 'number',
          description: "The published value, in the metric's units (e.g. % for error_pct, nats for log-likelihoods)",
        },
        pm: {
          type: 'number',
          minimum: 0,
          description:
            'The ± the source gives. Verdict within: |measured − value| ≤ pm (without pm: ≤ the std over seeds in elbo compare, exact for one run)',
        },
        mode: {
          enum: ['min', 'max'],
          description: `Which direction is better, for the verdict better/worse: min (error, loss) or max (accuracy, log-likelihood, elbo). ${MODE_RULE}`,
        },
        source: { type: 'string', minLength: 1, description: 'Where the number is published: paper, table, row' },
        note: { type: 'string', description: 'What differs between that setting and this config, or anything else a reader should know' },
      },
    },
  };
}

function kindSchema(registry: PluginRegistry, kind: PluginKind): JsonSchema {
  const branches = registry.list(kind).map(({ plugin }) => ({
    title: `${kind} ${plugin.name}`,
    description: plugin.description,
    type: 'object',
    additionalProperties: false,
    required: ['kind', ...(plugin.schema.required ?? [])],
    properties: { kind: { const: plugin.name }, ...plugin.schema.properties },
  }));
  return {
    // lets error messages name the kind wherever ajv reports the slot from
    'x-elbo-kind': kind,
    description: `A ${kind} plugin, chosen by 'kind'`,
    type: 'object',
    required: ['kind'],
    discriminator: { propertyName: 'kind' },
    oneOf: branches,
  };
}

/**
 * The schema as editors read it: rules between fields (`{$data: ...}`, an ajv extension
 * that elbo validate checks) are left out, so any draft-07 validator accepts the rest.
 */
export function editorSchema(schema: JsonSchema): JsonSchema {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (!v || typeof v !== 'object') return v;
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => !(x && typeof x === 'object' && '$data' in (x as object)))
        .map(([k, x]) => [k, strip(x)]),
    );
  };
  return strip(schema) as JsonSchema;
}
