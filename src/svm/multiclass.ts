import type { Rng } from '../runtime/rng';
import { design, ovrTargets, predictLinear, stack, SVM_DEFAULTS, trainLinearSvm, trainTsvm, type SolverOptions } from './linear-svm';

/** n rows of K features (row-major) and their classes in [0, classes). */
export interface LabelledRows {
  z: Float32Array;
  y: Int32Array;
  n: number;
}

/** C (the labelled examples'), C_unlabelled (tsvm: C*, default C), tol and max_iter of the solves (SVM_DEFAULTS when absent). */
export interface SvmOptions {
  C?: number;
  C_unlabelled?: number;
  tol?: number;
  max_iter?: number;
}

/**
 * The linear SVM (`svm`) or the transductive SVM (`tsvm`, when `zu` holds unlabelled rows) of
 * ./linear-svm.ts on rows of K features (the latent classifier's standardised latents):
 * LIBLINEAR's dual coordinate descent for ½‖w‖² + C Σ max(0, 1 − y wᵀx)² with an appended
 * constant feature 1 (a penalised intercept), scikit-learn's `LinearSVC()`; one problem for
 * two classes, one-vs-rest problems otherwise, prediction by the sign / the largest decision
 * value. Metrics:
 *  - svm_objective: the inductive SVM's primal objective, summed over the problems;
 *  - svm_iterations: its outer coordinate-descent passes, the largest over the problems
 *    (scikit-learn's n_iter_; equal to max_iter means it stopped unconverged);
 *  - tsvm only: tsvm_objective (the final TSVM objective with the unlabelled terms, summed
 *    over the problems), tsvm_switches (unlabelled labels swapped, all problems),
 *    unlabelled (rows used), and svm_error (set by the caller: the inductive SVM's error).
 */
export function svmPredict(
  train: LabelledRows,
  zte: Float32Array,
  nTest: number,
  K: number,
  classes: number,
  o: SvmOptions,
  rng: Rng,
  zu: Float32Array | null,
): { predictions: Int32Array; inductive: Int32Array | null; metrics: Record<string, number> } {
  const C = o.C ?? SVM_DEFAULTS.C;
  const solver: SolverOptions = { tol: o.tol ?? SVM_DEFAULTS.tol, maxIter: o.max_iter ?? SVM_DEFAULTS.maxIter, shrinking: true, rng };
  const L = design(train.z, train.n, K);
  const T = design(zte, nTest, K);
  const targets = ovrTargets(train.y, classes);
  if (!zu) {
    const fits = targets.map((y) => trainLinearSvm(L, y, C, solver));
    return {
      predictions: predictLinear(
        T,
        fits.map((f) => f.w),
      ),
      inductive: null,
      metrics: {
        svm_objective: fits.reduce((s, f) => s + f.objective, 0),
        svm_iterations: Math.max(...fits.map((f) => f.iterations)),
      },
    };
  }
  const nU = zu.length / K;
  const X = stack(L, design(zu, nU, K));
  const fits = targets.map((y) => {
    const positives = y.reduce((s, v) => s + (v > 0 ? 1 : 0), 0);
    return trainTsvm(X, train.n, y, positives / train.n, {
      ...solver,
      C,
      cUnlabelled: o.C_unlabelled ?? C,
      cStart: 1e-5,
      stageTol: 1e-2,
      maxRounds: 1000,
    });
  });
  return {
    predictions: predictLinear(
      T,
      fits.map((f) => f.w),
    ),
    inductive: predictLinear(
      T,
      fits.map((f) => f.inductive.w),
    ),
    metrics: {
      svm_objective: fits.reduce((s, f) => s + f.inductive.objective, 0),
      svm_iterations: Math.max(...fits.map((f) => f.inductive.iterations)),
      tsvm_objective: fits.reduce((s, f) => s + f.objective, 0),
      tsvm_switches: fits.reduce((s, f) => s + f.switches, 0),
      unlabelled: nU,
    },
  };
}
