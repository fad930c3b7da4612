import { Rng } from '../runtime/rng';

/**
 * Linear support vector machines for the latent classifier, in plain TypeScript on
 * Float64Arrays (the problems are a few thousand to tens of thousands of rows of at most a
 * few hundred features, where a tight scalar loop beats tensor kernels).
 *
 * The inductive SVM is the L2-regularised, L2-loss (squared hinge) linear SVM
 *
 *   min_w  ½‖w‖² + Σ_i C_i · max(0, 1 − y_i·wᵀx_i)²,    y_i = ±1,
 *
 * where every x_i carries an extra constant feature `bias` (1 by default), so that the
 * intercept is the last weight times `bias` and is penalised like the other weights. With
 * one C for every example this is exactly the problem scikit-learn's `LinearSVC()` hands to
 * LIBLINEAR by default (penalty l2, loss squared_hinge, intercept_scaling 1).
 *
 * Solver: dual coordinate descent (Hsieh, Chang, Lin, Keerthi and Sundararajan 2008, the
 * method LIBLINEAR uses for this problem). The dual is
 *
 *   min_α  ½ αᵀ(Q + D)α − Σ α_i,   α_i ≥ 0,   Q_ij = y_i y_j x_iᵀx_j,   D_ii = 1 / (2 C_i),
 *
 * with w = Σ α_i y_i x_i kept up to date, so that one coordinate costs two passes over one
 * row: the gradient G = y_i wᵀx_i − 1 + D_ii α_i, then the exact one-variable minimiser
 * α_i ← max(0, α_i − G / (Q_ii + D_ii)) and w += Δα_i y_i x_i. An outer iteration visits the
 * examples once, in a fresh random order. It stops when the projected gradient (G, or
 * min(G, 0) where α_i = 0) spans at most `tol` over a full pass, LIBLINEAR's test and
 * scikit-learn's `tol`, or after `maxIter` passes. Shrinking (LIBLINEAR's): an example at
 * α_i = 0 whose gradient exceeds the largest projected gradient of the previous pass is
 * dropped from the following passes; before stopping, one more full pass over every example
 * must pass the test. Since the L2 loss puts no upper bound on α, any α ≥ 0 is feasible for
 * any costs, which makes warm starts (changed costs, flipped labels) trivial: the TSVM below
 * relies on that.
 */

/** n rows of d features (row-major) and the constant feature appended to each row. */
export interface Design {
  x: Float64Array;
  n: number;
  d: number;
  /** LIBLINEAR's bias, scikit-learn's intercept_scaling; 0: no intercept. */
  bias: number;
}

export interface SolverOptions {
  /** Stop when max − min of the projected gradient over a full pass is ≤ tol (scikit-learn: 1e-4). */
  tol: number;
  /** At most this many outer passes per solve (scikit-learn: 1000). */
  maxIter: number;
  /** LIBLINEAR's shrinking heuristic (on in LIBLINEAR; the result is the same optimum). */
  shrinking: boolean;
  /** The visiting order of each pass. */
  rng: Rng;
}

export const SVM_DEFAULTS = { C: 1, tol: 1e-4, maxIter: 1000, bias: 1 };

/** wᵀx_i, with w of length d + 1 (the last weight multiplies `bias`). */
export function decision(X: Design, w: Float64Array, i: number): number {
  const { x, d } = X;
  let s = X.bias * w[d];
  const o = i * d;
  for (let k = 0; k < d; k++) s += x[o + k] * w[k];
  return s;
}

export function decisions(X: Design, w: Float64Array): Float64Array {
  const out = new Float64Array(X.n);
  for (let i = 0; i < X.n; i++) out[i] = decision(X, w, i);
  return out;
}

/** ‖x_i‖² including the bias feature. */
export function squaredNorms(X: Design): Float64Array {
  const { x, n, d, bias } = X;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = bias * bias;
    for (let k = 0; k < d; k++) s += x[i * d + k] ** 2;
    out[i] = s;
  }
  return out;
}

/** ½‖w‖² + Σ C_i max(0, 1 − y_i wᵀx_i)². */
export function primalObjective(X: Design, y: Float64Array, cost: Float64Array, w: Float64Array): number {
  let s = 0;
  for (let k = 0; k < w.length; k++) s += w[k] * w[k];
  s *= 0.5;
  for (let i = 0; i < X.n; i++) {
    const xi = 1 - y[i] * decision(X, w, i);
    if (xi > 0) s += cost[i] * xi * xi;
  }
  return s;
}

/**
 * Dual coordinate descent (see the file comment) from the given `w` and `alpha`, which must
 * agree (w = Σ α_i y_i x_i; both zero for a cold start) and are updated in place. `cost` holds
 * each example's C (> 0). Returns the outer passes made and whether the test was met.
 */
export function dualCoordinateDescent(
  X: Design,
  y: Float64Array,
  cost: Float64Array,
  w: Float64Array,
  alpha: Float64Array,
  o: SolverOptions,
  norms: Float64Array = squaredNorms(X),
): { iterations: number; converged: boolean } {
  const { x, n, d, bias } = X;
  const diag = new Float64Array(n);
  const qd = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (!(cost[i] > 0)) throw new Error(`SVM cost of example ${i} must be positive, got ${cost[i]}`);
    diag[i] = 0.5 / cost[i];
    qd[i] = norms[i] + diag[i];
  }
  const index = Int32Array.from({ length: n }, (_, i) => i);
  let active = n;
  // LIBLINEAR also tracks the previous pass's smallest projected gradient, to shrink
  // examples at the upper bound; the L2 loss has none
  let pgMaxOld = Infinity;
  let iter = 0;
  let converged = false;
  let seed = o.rng.nextUint32() | 1;
  while (iter < o.maxIter) {
    let pgMax = -Infinity;
    let pgMin = Infinity;
    for (let s = 0; s < active; s++) {
      // xorshift32 (seeded from o.rng per solve): the shuffle is a noticeable part of a shrunk pass
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      const j = s + ((seed >>> 0) % (active - s));
      const t = index[s];
      index[s] = index[j];
      index[j] = t;
    }
    for (let s = 0; s < active; s++) {
      const i = index[s];
      const yi = y[i];
      const off = i * d;
      let wx = bias * w[d];
      for (let k = 0; k < d; k++) wx += x[off + k] * w[k];
      const ai = alpha[i];
      const G = yi * wx - 1 + ai * diag[i];
      let PG = 0;
      if (ai === 0) {
        if (G > pgMaxOld && o.shrinking) {
          active--;
          index[s] = index[active];
          index[active] = i;
          s--;
          continue;
        }
        if (G < 0) PG = G;
      } else PG = G;
      if (PG > pgMax) pgMax = PG;
      if (PG < pgMin) pgMin = PG;
      if (Math.abs(PG) > 1e-12) {
        const next = Math.max(ai - G / qd[i], 0);
        alpha[i] = next;
        const step = (next - ai) * yi;
        for (let k = 0; k < d; k++) w[k] += step * x[off + k];
        w[d] += step * bias;
      }
    }
    iter++;
    if (pgMax - pgMin <= o.tol || active === 0) {
      if (active === n) {
        converged = true;
        break;
      }
      active = n;
      pgMaxOld = Infinity;
      continue;
    }
    pgMaxOld = pgMax <= 0 ? Infinity : pgMax;
  }
  return { iterations: iter, converged };
}

export interface BinarySvm {
  /** d + 1 weights, the last one the bias feature's. */
  w: Float64Array;
  objective: number;
  iterations: number;
  converged: boolean;
}

/** The inductive SVM with one C, from zero. */
export function trainLinearSvm(X: Design, y: Float64Array, C: number, o: SolverOptions): BinarySvm {
  const w = new Float64Array(X.d + 1);
  const alpha = new Float64Array(X.n);
  const cost = new Float64Array(X.n).fill(C);
  const r = dualCoordinateDescent(X, y, cost, w, alpha, o);
  return { w, objective: primalObjective(X, y, cost, w), ...r };
}

/** ±1 targets of a one-vs-rest problem. */
function oneVsRest(labels: Int32Array, c: number): Float64Array {
  return Float64Array.from(labels, (l) => (l === c ? 1 : -1));
}

/**
 * The problems a `classes`-way linear classifier is made of, as scikit-learn's LinearSVC:
 * two classes give one problem (class 1 positive); more give one-vs-rest problems, one per
 * class (that class positive, the rest negative).
 */
export function ovrTargets(labels: Int32Array, classes: number): Float64Array[] {
  return classes === 2 ? [oneVsRest(labels, 1)] : Array.from({ length: classes }, (_, c) => oneVsRest(labels, c));
}

/** Class of each row: the sign of the one decision value (2 classes), else the argmax over the one-vs-rest problems. */
export function predictLinear(X: Design, weights: Float64Array[]): Int32Array {
  const out = new Int32Array(X.n);
  for (let i = 0; i < X.n; i++) {
    if (weights.length === 1) {
      out[i] = decision(X, weights[0], i) > 0 ? 1 : 0;
      continue;
    }
    let best = 0;
    let bestValue = -Infinity;
    weights.forEach((w, c) => {
      const v = decision(X, w, i);
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    });
    out[i] = best;
  }
  return out;
}

export interface TsvmOptions extends SolverOptions {
  /** The labelled examples' C. */
  C: number;
  /** C*, the unlabelled examples' final weight. */
  cUnlabelled: number;
  /** C* of the first stage, as a fraction of `cUnlabelled` (Joachims: 1e-5). */
  cStart: number;
  /**
   * Solver tolerance of the stages before the last (at most `tol` is used there if larger):
   * they only steer the labels, and the last stage, at C*, solves to `tol` from their warm
   * start. 1e-2 cuts the passes about fourfold against 1e-4 on M1-sized problems.
   */
  stageTol: number;
  /** Switch rounds per stage at most (a guard: each round lowers the objective, so the loop ends anyway). */
  maxRounds: number;
}

export interface BinaryTsvm {
  w: Float64Array;
  /** The inductive SVM the TSVM started from (labelled rows only). */
  inductive: BinarySvm;
  /** The final TSVM objective: ½‖w‖² + C Σ_labelled ξ² + C* Σ_unlabelled ξ². */
  objective: number;
  /** Labels given to the unlabelled rows. */
  labels: Float64Array;
  switches: number;
  rounds: number;
  stages: number;
  /** Dual CD passes over all solves. */
  iterations: number;
  /** Every solve met the tolerance and no stage hit maxRounds. */
  converged: boolean;
}

/**
 * A transductive linear SVM (Joachims 1999, "Transductive inference for text classification
 * using support vector machines"), with the squared hinge. Rows [0, nL) of `X` are labelled
 * (targets `yL`, ±1), the rest unlabelled. The TSVM looks for labels of the unlabelled rows
 * and a hyperplane that together minimise
 *
 *   ½‖w‖² + C Σ_labelled ξ_i² + C*₊ Σ_{unlabelled, +} ξ_j² + C*₋ Σ_{unlabelled, −} ξ_j²,
 *   ξ = max(0, 1 − y wᵀx),
 *
 * with a fixed number num₊ of unlabelled rows labelled positive, so the margin is pushed into
 * low-density regions of the unlabelled data. Joachims' local search:
 *  1. Train the inductive SVM on the labelled rows; label the num₊ unlabelled rows with the
 *     largest decision values positive, the rest negative. num₊ = `positiveFraction` times
 *     the number of unlabelled rows (the labelled set's fraction of positives).
 *  2. Start the unlabelled weights tiny: C*₋ = cStart·C*, C*₊ = C*₋·num₊/(n_u − num₊) (this
 *     ratio balances the two classes' total unlabelled weight).
 *  3. Each stage: retrain with the current weights; then, while some unlabelled pair with
 *     opposite labels has ξ_m > 0, ξ_l > 0 and ξ_m + ξ_l > 2, swap the pair's labels and
 *     retrain. Such a swap lowers the objective at fixed w (for the squared hinge too:
 *     (2 − a)² + (2 − b)² < a² + b² when a + b > 2) and keeps num₊ fixed, so the search ends.
 *  4. Double C*₋ and C*₊ (capped at C*) and go back to 3; the last stage runs with both at C*.
 * Three shortcuts keep it fast: a round swaps every
 * disjoint qualifying pair at once (positives and negatives each sorted by slack, largest
 * paired with largest, while the sum exceeds 2: each swap lowers the objective at the
 * current w, and the loop ends when the largest pair fails, which is exactly when no pair
 * qualifies); and every retrain is a warm start of the dual coordinate descent: a swapped
 * row's α is reset to 0 (w minus its old contribution) and changed weights only change D,
 * since every α ≥ 0 stays feasible; and the stages before the last solve to a looser
 * tolerance `stageTol` (their solutions only steer the label search; the last stage, at C*,
 * solves every retrain to `tol`).
 */
export function trainTsvm(X: Design, nL: number, yL: Float64Array, positiveFraction: number, o: TsvmOptions): BinaryTsvm {
  const { n, d } = X;
  const nU = n - nL;
  const norms = squaredNorms(X);
  const labelled: Design = { ...X, x: X.x.subarray(0, nL * d), n: nL };
  const w = new Float64Array(d + 1);
  const alpha = new Float64Array(n);
  const y = new Float64Array(n);
  y.set(yL);
  const cost = new Float64Array(n).fill(o.C);
  const first = dualCoordinateDescent(
    labelled,
    y.subarray(0, nL),
    cost.subarray(0, nL),
    w,
    alpha.subarray(0, nL),
    o,
    norms.subarray(0, nL),
  );
  const inductive: BinarySvm = {
    w: Float64Array.from(w),
    objective: primalObjective(labelled, y.subarray(0, nL), cost.subarray(0, nL), w),
    ...first,
  };
  let iterations = first.iterations;
  let converged = first.converged;
  // 1. initial labels: the num₊ highest decision values positive
  const numPos = Math.max(0, Math.min(nU, Math.round(positiveFraction * nU)));
  const f0 = Array.from({ length: nU }, (_, j) => decision(X, w, nL + j));
  const order = Array.from({ length: nU }, (_, j) => j).sort((a, b) => f0[b] - f0[a] || a - b);
  for (let r = 0; r < nU; r++) y[nL + order[r]] = r < numPos ? 1 : -1;
  // 2. tiny unlabelled weights
  const cMax = o.cUnlabelled;
  let cNeg = o.cStart * cMax;
  let cPos = numPos > 0 && numPos < nU ? (cNeg * numPos) / (nU - numPos) : cNeg;
  let switches = 0;
  let rounds = 0;
  let stages = 0;
  const slack = new Float64Array(nU);
  for (;;) {
    stages++;
    for (let j = 0; j < nU; j++) cost[nL + j] = y[nL + j] > 0 ? cPos : cNeg;
    const last = cNeg >= cMax && cPos >= cMax;
    const solver = last ? o : { ...o, tol: Math.max(o.tol, o.stageTol) };
    // 3. retrain, then swap pairs until none qualifies
    for (let round = 0; ; round++) {
      const r = dualCoordinateDescent(X, y, cost, w, alpha, solver, norms);
      iterations += r.iterations;
      converged &&= r.converged;
      if (nU === 0) break;
      for (let j = 0; j < nU; j++) slack[j] = Math.max(0, 1 - y[nL + j] * decision(X, w, nL + j));
      const pos: number[] = [];
      const neg: number[] = [];
      for (let j = 0; j < nU; j++) if (slack[j] > 0) (y[nL + j] > 0 ? pos : neg).push(j);
      const bySlack = (a: number, b: number) => slack[b] - slack[a] || a - b;
      pos.sort(bySlack);
      neg.sort(bySlack);
      let pairs = 0;
      while (pairs < pos.length && pairs < neg.length && slack[pos[pairs]] + slack[neg[pairs]] > 2) pairs++;
      if (pairs === 0) break;
      if (round >= o.maxRounds) {
        converged = false;
        break;
      }
      rounds++;
      switches += 2 * pairs;
      for (let p = 0; p < pairs; p++)
        for (const j of [pos[p], neg[p]]) {
          const i = nL + j;
          const step = -alpha[i] * y[i];
          if (step !== 0) {
            for (let k = 0; k < d; k++) w[k] += step * X.x[i * d + k];
            w[d] += step * X.bias;
          }
          alpha[i] = 0;
          y[i] = -y[i];
          cost[i] = y[i] > 0 ? cPos : cNeg;
        }
    }
    // 4. double the unlabelled weights; the stage at C* was the last
    if (cNeg >= cMax && cPos >= cMax) break;
    cNeg = Math.min(2 * cNeg, cMax);
    cPos = Math.min(2 * cPos, cMax);
  }
  return {
    w,
    inductive,
    objective: primalObjective(X, y, cost, w),
    labels: y.slice(nL),
    switches,
    rounds,
    stages,
    iterations,
    converged,
  };
}

/** Rows of `a` then rows of `b` (same d and bias). */
export function stack(a: Design, b: Design): Design {
  const x = new Float64Array((a.n + b.n) * a.d);
  x.set(a.x.subarray(0, a.n * a.d));
  x.set(b.x.subarray(0, b.n * b.d), a.n * a.d);
  return { x, n: a.n + b.n, d: a.d, bias: a.bias };
}

/** Float32 rows to a Design. */
export function design(z: Float32Array | Float64Array, n: number, d: number, bias: number = SVM_DEFAULTS.bias): Design {
  return { x: Float64Array.from(z.subarray(0, n * d)), n, d, bias };
}
