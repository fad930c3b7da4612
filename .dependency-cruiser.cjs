// Imports flow one way (test/architecture.test.ts runs this on src/, type-only imports
// included: a type is as much a dependency as a value): a folder imports only from
// folders in its own layer or below. From the bottom:
//   0 errors, util, runtime        no elbo imports above these
//   1 contracts                    what plugins make and receive (Model, Prior, Network, ...)
//   2 registry                     the registry, definePlugin and the option helpers, weights
//   3 config                       YAML, --set, the schema assembled from a registry
//   4 losses nn data schedules track mlflow plot svm   leaf plugins, the run store and checkpoints, MLflow, figures, the SVM solvers
//   5 priors
//   6 models
//   7 eval
//   8 train                        the loop, the step, optimizers
//   9 builtins report              the list of built-in plugins; a run's report.html
//  10 experiment run export        one run (experiment.ts) as named steps (run/); a finished run exported
//  11 bench sweep                  many runs (and a sweep's report.html)
//  12 cli index                    entry points
// src/contracts/ imports nothing but TensorFlow.js types, other contracts and types of
// layer 0, and no module cycles at all.
'use strict';

const LAYERS = [
  ['errors', 'util', 'runtime'],
  ['contracts'],
  ['registry'],
  ['config'],
  ['losses', 'nn', 'data', 'schedules', 'track', 'mlflow', 'plot', 'svm'],
  ['priors'],
  ['models'],
  ['eval'],
  ['train'],
  ['builtins', 'report'],
  ['experiment', 'run', 'export'],
  ['bench', 'sweep'],
  ['cli', 'index'],
];

const path = (names) => `^src/(${names.join('|')})(/|\\.ts$)`;

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'a module cycle (type-only imports count)', from: {}, to: { circular: true } },
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `layer-${i}-${layer.join('-')}`,
      severity: 'error',
      comment: `${layer.join(', ')} may not import from a higher layer (${LAYERS.slice(i + 1)
        .flat()
        .join(', ')})`,
      from: { path: path(layer) },
      to: { path: path(LAYERS.slice(i + 1).flat()) },
    })),
    {
      name: 'contracts-types-only',
      severity: 'error',
      comment: 'src/contracts/ takes only types from outside itself (TensorFlow.js, layer 0)',
      from: { path: '^src/contracts/' },
      to: { pathNot: '^src/contracts/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-unknown-folder',
      severity: 'error',
      comment: 'every folder of src/ has a layer in .dependency-cruiser.cjs',
      from: { path: '^src/', pathNot: path(LAYERS.flat()) },
      to: {},
    },
  ],
  options: {
    // type-only imports are dependencies too: a cycle through types is still a cycle
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules|\\.d\\.ts$' },
  },
};
