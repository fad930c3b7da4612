// Imports flow one way (test/dependencies.test.ts runs this on the compiled dist/src, where
// type-only imports are gone): a folder imports only from folders in its own layer or
// below. From the bottom:
//   0 errors, util, runtime        no elbo imports above these
//   1 registry                     the plugin contract (types, weights, the registry)
//   2 config                       YAML, --set, the schema assembled from a registry
//   3 losses nn data schedules track plot svm   leaf plugins, the run store and checkpoints, figures, the SVM solvers
//   4 priors
//   5 models
//   6 eval
//   7 train                        the loop, the step, optimizers
//   8 builtins report              the list of built-in plugins; a run's report.html
//   9 experiment run export        one run (experiment.ts) as named steps (run/); a finished run exported
//  10 bench sweep                  many runs (and a sweep's report.html)
//  11 cli index                    entry points
// and no module cycles at all.
'use strict';

const LAYERS = [
  ['errors', 'util', 'runtime'],
  ['registry'],
  ['config'],
  ['losses', 'nn', 'data', 'schedules', 'track', 'plot', 'svm'],
  ['priors'],
  ['models'],
  ['eval'],
  ['train'],
  ['builtins', 'report'],
  ['experiment', 'run', 'export'],
  ['bench', 'sweep'],
  ['cli', 'index'],
];

const path = (names) => `^dist/src/(${names.join('|')})(/|\\.js$)`;

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'a module cycle', from: {}, to: { circular: true } },
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `layer-${i}-${layer.join('-')}`,
      severity: 'error',
      comment: `${layer.join(', ')} may not import from a higher layer (${LAYERS.slice(i + 1).flat().join(', ')})`,
      from: { path: path(layer) },
      to: { path: path(LAYERS.slice(i + 1).flat()) },
    })),
    {
      name: 'no-unknown-folder',
      severity: 'error',
      comment: 'every folder of src/ has a layer in .dependency-cruiser.cjs',
      from: { path: '^dist/src/', pathNot: path(LAYERS.flat()) },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules|\\.d\\.ts$|\\.map$' },
  },
};
