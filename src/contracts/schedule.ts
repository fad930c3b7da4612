import type { TrainProgress } from './progress';

/**
 * A schedule maps training progress to a number (a loss weight, a sharpness, ...).
 * `epochFloat` is always given (schedules/schedule.ts scheduleProgress fills it in).
 */
export type Schedule = (p: TrainProgress & { epochFloat: number }) => number;
