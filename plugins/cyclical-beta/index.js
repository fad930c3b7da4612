// A third-party elbo plugin, loaded exactly like a user's own: name it in a config
//   plugins: [./plugins/cyclical-beta]
//   loss: { c1: { kind: cyclical, cycles: 4, ratio: 0.5 } }
// It is plain JavaScript on purpose: a plugin needs no build step and no import from
// elbo; it exports {kind, name, description, schema, create}.
//
// Cyclical KL annealing (Fu et al., NAACL 2019, "Cyclical Annealing Schedule: A Simple
// Approach to Mitigating KL Vanishing"): training is split into `cycles` equal parts; in
// each, the weight rises linearly from `min` to `max` over the first `ratio` of the
// part and then stays at `max`.
'use strict';

module.exports = {
  kind: 'schedule',
  name: 'cyclical',
  description: 'Cyclical KL annealing (Fu et al. 2019): repeated linear ramps min → max, then flat, over training',
  schema: {
    properties: {
      cycles: { type: 'integer', minimum: 1, default: 4, description: 'Number of ramps over the whole run' },
      ratio: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.5, description: 'Fraction of each cycle spent ramping' },
      min: { type: 'number', default: 0 },
      max: { type: 'number', default: 1 },
    },
  },
  create(o) {
    return (progress) => {
      const position = (progress.fraction * o.cycles) % 1; // where in the current cycle
      if (progress.fraction >= 1) return o.max;
      return position < o.ratio ? o.min + ((o.max - o.min) * position) / o.ratio : o.max;
    };
  },
};
