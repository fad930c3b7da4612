import { definePlugin, NumberRelative, ObjectOf, Type, type OptionsOf } from '../registry/define';
import type { PluginContext, WeightDeclaration, TrainProgress, WeightSpec, Schedule, PluginRegistry } from '../contracts';

const linearOptions = {
  from: Type.Number({ minimum: 0, default: 0, description: 'Value before start_epoch (≥ 0: schedules drive weights and sharpnesses)' }),
  to: Type.Number({ minimum: 0, default: 1, description: 'Value from end_epoch on (≥ 0)' }),
  start_epoch: Type.Number({ minimum: 0, default: 0 }),
  end_epoch: NumberRelative({ minimum: { $data: '1/start_epoch' }, default: 10, description: 'Not before start_epoch' }),
};
export type LinearOptions = OptionsOf<typeof linearOptions>;

/** Linear ramp from `from` to `to` between two (fractional) epochs; flat outside. */
export const linearSchedulePlugin = definePlugin({
  kind: 'schedule',
  name: 'linear',
  description: 'Linear ramp between two epochs (e.g. a KL warm-up 0 → 1), constant before and after',
  options: linearOptions,
  create: (o): Schedule => ramp(o, (t) => t),
});

/** From `from` to `to` between two epochs along `shape` (0 at t = 0, 1 at t = 1); flat outside. */
function ramp(o: LinearOptions, shape: (t: number) => number): Schedule {
  return (p) => {
    if (p.epochFloat <= o.start_epoch) return o.from;
    if (p.epochFloat >= o.end_epoch) return o.to;
    return o.from + (o.to - o.from) * shape((p.epochFloat - o.start_epoch) / (o.end_epoch - o.start_epoch));
  };
}

const cosineOptions = {
  from: Type.Number({ minimum: 0, default: 1, description: 'Value until start_epoch (≥ 0)' }),
  to: Type.Number({ minimum: 0, default: 0, description: 'Value from end_epoch on (≥ 0)' }),
  start_epoch: Type.Number({ minimum: 0, default: 0 }),
  end_epoch: NumberRelative({ minimum: { $data: '1/start_epoch' }, default: 10, description: 'Not before start_epoch' }),
};

/**
 * Half a cosine from `from` to `to` between two (fractional) epochs (Loshchilov & Hutter's
 * annealing without restarts): a learning-rate decay such as `{kind: cosine, from: 1e-3,
 * to: 1e-5, end_epoch: 500}`; flat outside.
 */
export const cosineSchedulePlugin = definePlugin({
  kind: 'schedule',
  name: 'cosine',
  description: 'Cosine annealing between two epochs (e.g. a learning rate 1e-3 → 1e-5), constant before and after',
  options: cosineOptions,
  create: (o): Schedule => ramp(o, (t) => (1 - Math.cos(Math.PI * t)) / 2),
});

const piecewiseOptions = {
  stages: Type.Array(
    ObjectOf(
      {
        epochs: Type.Number({ exclusiveMinimum: 0, description: 'How long the stage lasts, in (fractional) epochs' }),
        value: Type.Number({ minimum: 0, description: 'The value during the stage (≥ 0)' }),
      },
      { additionalProperties: false },
    ),
    { minItems: 1, description: 'Consecutive stages from epoch 0; the last value holds after the last stage' },
  ),
};

/**
 * Constant stages, one after another from epoch 0 (step decay); the last value holds after
 * them. The IWAE paper's learning rate, 10^(−i/7)·1e-3 for 3^i passes, begins
 * `{kind: piecewise, stages: [{epochs: 1, value: 1e-3}, {epochs: 3, value: 7.2e-4}, ...]}`.
 */
export const piecewiseSchedulePlugin = definePlugin({
  kind: 'schedule',
  name: 'piecewise',
  description: 'Constant stages of given lengths, one after another (step decay)',
  options: piecewiseOptions,
  create(o): Schedule {
    const ends: number[] = [];
    o.stages.reduce((end, st) => (ends.push(end + st.epochs), end + st.epochs), 0);
    return (p) => {
      const i = ends.findIndex((end) => p.epochFloat < end);
      return o.stages[i < 0 ? o.stages.length - 1 : i].value;
    };
  },
});

/**
 * Progress as schedules written in epochs read it (spike-slab's c: {kind: linear, from: 50,
 * to: 200, end_epoch: N}; M2's entropy_weight). The training loop may say where it is within
 * an epoch (`epochFloat`);
 * otherwise the schedule moves at epoch boundaries. Evaluation passes fraction = 1 and
 * gets the end value of every schedule.
 */
export function scheduleProgress(p: TrainProgress): TrainProgress & { epochFloat: number } {
  const epochFloat = p.epochFloat ?? (p.fraction >= 1 ? Number.POSITIVE_INFINITY : p.epoch);
  return { ...p, epochFloat };
}

/**
 * The weights evaluations compute the terms with, at training progress `at`: multipliers at 1
 * (the unweighted terms), a declared `role: 'parameter'` at its schedule's value there.
 */
export function evaluationWeights(
  declared: Record<string, WeightDeclaration> | undefined,
  schedules: Record<string, Schedule>,
): (at: TrainProgress) => Record<string, number> {
  return (at) =>
    Object.fromEntries(Object.entries(schedules).map(([n, s]) => [n, declared?.[n]?.role === 'parameter' ? s(scheduleProgress(at)) : 1]));
}

/** Turn a weight as written (number or schedule options) into a schedule. */
export function weightSchedule(spec: WeightSpec, registry: PluginRegistry, ctx: PluginContext): Schedule {
  if (typeof spec === 'number') return () => spec;
  return registry.create('schedule', spec, ctx);
}
