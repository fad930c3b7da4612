import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { setTf } from '../src/runtime/tf';
import { createRegistry } from '../src/builtins';
import { Rng } from '../src/runtime/rng';
import { adgmCore, AdgmModel, AdgmVariant, ADGM_TERMS, type AdgmOptions } from '../src/models/adgm';
import { runExperiment } from '../src/experiment';
import { loadConfig } from '../src/config/load';
import { isSweepFile, loadSweep, resolveCells } from '../src/sweep/spec';
import { tmpDir, smallConfig, tinyDataSet, tinyAdgmOptions, ROOT, epochLines, shortSemiSupervisedRun, EVAL, sum, close } from './helpers';
import type { DataSet } from '../src/contracts';
import { termMeans } from '../src/models/model';

test.before(async () => {
  await tf.setBackend('cpu');
  setTf(tf);
});

const VARIANTS: AdgmVariant[] = ['adgm', 'sdgm'];

/** A tiny labelled data set (D = 6, C = 3). */
const tinyData = (): DataSet => tinyDataSet({ shape: [6], classes: 3 });

function tinyModel(variant: AdgmVariant, extra: Record<string, unknown> = {}): AdgmModel {
  const registry = createRegistry();
  const ctx = { tf, registry, rng: new Rng(5), baseDir: '.', data: tinyData() };
  return adgmCore(tinyAdgmOptions(extra) as AdgmOptions, ctx, variant, `model (${variant})`);
}

const row = (n: { apply(x: tf.Tensor2D): tf.Tensor2D }, v: number[]) => (n.apply(tf.tensor2d([v])).arraySync() as number[][])[0];
const softmax = (l: number[]) => {
  const mx = Math.max(...l);
  const e = l.map((v) => Math.exp(v - mx));
  return e.map((v) => v / sum(e));
};
const logN = (v: number[], mu: number[], lv: number[]) =>
  sum(v.map((x, i) => -0.5 * ((x - mu[i]) ** 2 / Math.exp(lv[i]) + lv[i] + Math.log(2 * Math.PI))));
const sig = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * One pass of (x, a, y) by hand, from the networks' own outputs: z = μ + σ·e, −log p(x|·),
 * KL(q(z|a,y,x) ‖ N(0, I)), log p(a|·) and log q(z|·), log p(z).
 */
function handPass(m: AdgmModel, xi: number[], a: number[], c: number, e: number[]) {
  const { encoder, decoder, decoderA } = m.parts;
  const C = m.classes;
  const K = m.latent;
  const A = m.aux;
  const oh = Array.from({ length: C }, (_, j) => (j === c ? 1 : 0));
  const enc = row(encoder, [...xi, ...a, ...oh]);
  const mu = enc.slice(0, K);
  const lv = enc.slice(K, 2 * K);
  const z = mu.map((m_, k) => m_ + Math.exp(lv[k] / 2) * e[k]);
  const sd = m.variant === 'sdgm';
  const logits = row(decoder, sd ? [...z, ...a, ...oh] : [...z, ...oh]);
  const recon = -sum(xi.map((xv, i) => xv * Math.log(sig(logits[i])) + (1 - xv) * Math.log(1 - sig(logits[i]))));
  const kl = 0.5 * sum(mu.map((m_, k) => m_ * m_ + Math.exp(lv[k]) - lv[k] - 1));
  const pa = row(decoderA, sd ? [...z, ...oh] : [...xi, ...z, ...oh]);
  const logpa = logN(a, pa.slice(0, A), pa.slice(A, 2 * A));
  return {
    recon,
    kl,
    logpa,
    logqz: logN(z, mu, lv),
    logpz: logN(
      z,
      z.map(() => 0),
      z.map(() => 0),
    ),
  };
}

/** a ~ q(a|x) by hand from noise e: a, log q(a|x), and q(a|x)'s mean. */
function handA(m: AdgmModel, xi: number[], e: number[]) {
  const A = m.aux;
  const out = row(m.parts.encoderA, xi);
  const mu = out.slice(0, A);
  const lv = out.slice(A, 2 * A);
  const a = mu.map((v, k) => v + Math.exp(lv[k] / 2) * e[k]);
  return { a, mu, logqa: logN(a, mu, lv) };
}

/**
 * The ADGM/SDGM objective by hand (plain JS) with the same noise the model draws: first
 * a's noise for every row (B·A), then z's for every pass (labelled rows, then each
 * unlabelled row once per class; with shared noise one draw per row of x). With S draws of a
 * (aux_samples) the batch is repeated S times, draw-major: a's noise for the S·B rows, z's for
 * the labelled passes of every draw, then per class the unlabelled passes of every draw; a
 * row's terms are averaged over its draws and q(y|a,x) becomes q̄ = mean_s q(y|a_s,x). With
 * `groups` (norm_groups: separate) the repeated rows are the labelled rows' S draws, then the
 * unlabelled rows'.
 */
function handObjective(
  m: AdgmModel,
  x: number[][],
  y: number[],
  seed: number,
  c1: number,
  c2: number,
  alpha: number,
  o: { shared?: boolean; classMean?: boolean; draws?: number; groups?: boolean } = {},
) {
  const C = m.classes;
  const K = m.latent;
  const A = m.aux;
  const B = y.length;
  const S = o.draws ?? 1;
  const draws = Array.from({ length: S }, (_, s) => s);
  const lab = y.flatMap((v, i) => (v >= 0 ? [i] : []));
  const unl = y.flatMap((v, i) => (v < 0 ? [i] : []));
  // the repeated rows' order: draw-major, or (groups) the labelled rows' draws, then the unlabelled rows'
  const tiles = o.groups
    ? [...draws.flatMap((s) => lab.map((r) => [s, r])), ...draws.flatMap((s) => unl.map((r) => [s, r]))]
    : draws.flatMap((s) => y.map((_, r) => [s, r]));
  const pos = draws.map(() => y.map(() => 0));
  tiles.forEach(([s, r], t) => (pos[s][r] = t));
  const eps = new Rng(seed);
  const epsA = Array.from(eps.normals(S * B * A));
  // rows[s][r]: row r's draw s of a
  const rows = draws.map((s) => x.map((xi, r) => handA(m, xi, epsA.slice(pos[s][r] * A, (pos[s][r] + 1) * A))));
  const perTile = o.shared ? tiles.map(() => Array.from(eps.normals(K))) : [];
  const perRow = draws.map((s) => y.map((_, r) => perTile[pos[s][r]]));
  const epsLab = draws.map((s) => (o.shared ? lab.map((r) => perRow[s][r]) : lab.map(() => Array.from(eps.normals(K)))));
  const epsUnl: number[][][][] = Array.from({ length: C }, () =>
    draws.map((s) => (o.shared ? unl.map((r) => perRow[s][r]) : unl.map(() => Array.from(eps.normals(K))))),
  );
  const L = (s: number, r: number, c: number, e: number[]) => {
    const t = handPass(m, x[r], rows[s][r].a, c, e);
    const klA = rows[s][r].logqa - t.logpa;
    return { ...t, klA, Lw: c2 * t.recon + c1 * (t.kl + klA) + Math.log(C), L1: t.recon + t.kl + klA + Math.log(C) };
  };
  type Pass = ReturnType<typeof L>;
  /** The mean over the draws of each of a pass's terms. */
  const mean = (ts: Pass[]) =>
    Object.fromEntries(Object.keys(ts[0]).map((k) => [k, sum(ts.map((t) => t[k as keyof Pass] as number)) / S])) as Pass;
  /** q̄(y|x): the mean over the draws of q(y|a_s,x). */
  const qy = (r: number) => {
    const qs = draws.map((s) => softmax(row(m.parts.classifier, [...rows[s][r].a, ...x[r]])));
    return Array.from({ length: C }, (_, c) => sum(qs.map((q) => q[c])) / S);
  };
  let lw = 0,
    labelled = 0,
    unlabelled = 0,
    cls = 0,
    ent = 0,
    correct = 0,
    recon = 0,
    kl = 0,
    klA = 0;
  lab.forEach((r, i) => {
    const t = mean(draws.map((s) => L(s, r, y[r], epsLab[s][i])));
    const q = qy(r);
    lw += t.Lw;
    labelled += t.L1;
    cls += -Math.log(q[y[r]]);
    recon += t.recon;
    kl += t.kl;
    klA += t.klA;
    const qm = row(m.parts.classifier, [...rows[0][r].mu, ...x[r]]);
    if (qm.indexOf(Math.max(...qm)) === y[r]) correct++;
  });
  unl.forEach((r, i) => {
    const q = qy(r);
    const H = -sum(q.map((p) => p * Math.log(p)));
    const per = Array.from({ length: C }, (_, c) => mean(draws.map((s) => L(s, r, c, epsUnl[c][s][i]))));
    lw += sum(per.map((t, c) => q[c] * t.Lw)) - H;
    unlabelled += sum(per.map((t, c) => q[c] * t.L1)) - H;
    recon += sum(per.map((t, c) => q[c] * t.recon));
    kl += sum(per.map((t, c) => q[c] * t.kl));
    klA += sum(per.map((t, c) => q[c] * t.klA));
    ent += H;
  });
  const classTerm = o.classMean ? (lab.length ? (alpha * cls * B) / lab.length : 0) : alpha * cls;
  return {
    loss: (lw + classTerm) / B,
    labelled: labelled / B,
    unlabelled: unlabelled / B,
    class: cls / B,
    entropy: ent / B,
    accuracy: correct / B,
    recon: recon / B,
    kl: kl / B,
    kl_a: klA / B,
    elbo: -(labelled + unlabelled) / B,
  };
}

function batchOf(y: number[]) {
  const data = tinyData();
  const x = Array.from({ length: y.length }, (_, i) => Array.from(data.train.x.subarray(i * 6, i * 6 + 6)));
  return { x, xt: tf.tensor2d(x) };
}

const KEYS = ['loss', 'labelled', 'unlabelled', 'class', 'entropy', 'accuracy', 'recon', 'kl', 'kl_a', 'elbo'] as const;

test('a mixed batch: every term of adgm and sdgm matches the hand computation (c1 on both KL terms, c2, α)', () => {
  for (const variant of VARIANTS) {
    const m = tinyModel(variant);
    const y = [2, -1, 0, -1, 1, -1];
    const { x, xt } = batchOf(y);
    const [c1, c2, alpha] = [0.5, 2, 3];
    const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1, c2, alpha }, new Rng(9), EVAL);
    // the logged terms, and the labelled rows' share (3 of 6) that an epoch's accuracy is read over
    assert.deepEqual(Object.keys(t).sort(), [...ADGM_TERMS, '_labelled'].sort());
    assert.equal(t._labelled.dataSync()[0], 0.5);
    const hand = handObjective(m, x, y, 9, c1, c2, alpha);
    for (const k of KEYS) close(t[k].dataSync()[0], hand[k], 1e-4, `${variant} ${k}`);
    // as a run logs them: the accuracy on the labelled rows, the share left out
    const logged = termMeans(m, Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.dataSync()[0]])));
    assert.deepEqual(Object.keys(logged).sort(), [...ADGM_TERMS].sort());
    close(logged.accuracy, (hand.accuracy * 6) / 3, 1e-6, `${variant} logged accuracy`);
  }
});

test('unlabelled rows alone (y summed out), shared z noise, and class_loss: mean, against the hand computation', () => {
  for (const variant of VARIANTS) {
    const m = tinyModel(variant);
    const y = [-1, -1, -1, -1];
    const { x, xt } = batchOf(y);
    const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 1, c2: 1, alpha: 0 }, new Rng(42), EVAL);
    const hand = handObjective(m, x, y, 42, 1, 1, 0);
    for (const k of KEYS) close(t[k].dataSync()[0], hand[k], 1e-4, `${variant} unlabelled ${k}`);
    assert.equal(t.labelled.dataSync()[0], 0);

    const shared = tinyModel(variant, { class_noise: 'shared' });
    const y2 = [1, -1, 0, -1, -1];
    const b2 = batchOf(y2);
    const t2 = shared.terms({ x: b2.xt, y: Int32Array.from(y2) }, { c1: 1, c2: 1, alpha: 2 }, new Rng(7), EVAL);
    const h2 = handObjective(shared, b2.x, y2, 7, 1, 1, 2, { shared: true });
    for (const k of KEYS) close(t2[k].dataSync()[0], h2[k], 1e-4, `${variant} shared ${k}`);

    const meanForm = tinyModel(variant, { class_loss: 'mean' });
    const t3 = meanForm.terms({ x: b2.xt, y: Int32Array.from(y2) }, { c1: 1, c2: 1, alpha: 2 }, new Rng(7), EVAL);
    const h3 = handObjective(meanForm, b2.x, y2, 7, 1, 1, 2, { classMean: true });
    close(t3.loss.dataSync()[0], h3.loss, 1e-4, `${variant} class_loss mean`);
  }
});

test('aux_samples: S draws of a per row, every term against the hand computation (terms averaged over the draws, q̄ = the mean of q(y|a_s,x)); S = 1 is the one-draw objective', () => {
  for (const variant of VARIANTS) {
    for (const [S, shared] of [
      [2, false],
      [3, true],
    ] as [number, boolean][]) {
      const m = tinyModel(variant, { aux_samples: S, ...(shared ? { class_noise: 'shared' } : {}) });
      const y = [2, -1, 0, -1, 1, -1];
      const { x, xt } = batchOf(y);
      const [c1, c2, alpha] = [0.5, 2, 3];
      const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1, c2, alpha }, new Rng(9), EVAL);
      const hand = handObjective(m, x, y, 9, c1, c2, alpha, { draws: S, shared });
      for (const k of KEYS) close(t[k].dataSync()[0], hand[k], 1e-4, `${variant} S=${S} ${k}`);
      // the one-draw objective is not what S draws compute (the test can tell them apart)
      const one = handObjective(m, x, y, 9, c1, c2, alpha, { shared });
      assert.ok(Math.abs(one.loss - hand.loss) > 1e-3, `${variant} S=${S}: ${one.loss} vs ${hand.loss}`);
      // the step's inputs carry the repeated rows; terms given them compute the same
      const inputs = Object.fromEntries(
        Object.entries(m.stepInputs!(Int32Array.from(y), y.length)).map(([k, v]) => [k, tf.tensor1d(v, 'int32')]),
      );
      assert.deepEqual(Object.keys(inputs).sort(), [
        'idx',
        'lab',
        'labY',
        'rep_idx',
        'rep_lab',
        'rep_labY',
        'rep_unl',
        'rep_ys',
        'unl',
        'ys',
      ]);
      assert.equal(inputs.rep_idx.shape[0], S * (3 + 3 * 3));
      const t2 = m.terms({ x: xt, y: Int32Array.from(y), inputs }, { c1, c2, alpha }, new Rng(9), EVAL);
      close(t2.loss.dataSync()[0], hand.loss, 1e-4, `${variant} S=${S} with step inputs`);
    }
    assert.deepEqual(Object.keys(tinyModel(variant).stepInputs!(Int32Array.from([0, -1]), 2)).sort(), ['idx', 'lab', 'labY', 'unl', 'ys']);
  }
});

test('aux_samples with norm_groups: separate: the labelled rows S times, then the unlabelled rows S times, every term against the hand computation', () => {
  for (const variant of VARIANTS) {
    for (const [S, shared] of [
      [2, false],
      [3, true],
    ] as [number, boolean][]) {
      const m = tinyModel(variant, { aux_samples: S, norm_groups: 'separate', ...(shared ? { class_noise: 'shared' } : {}) });
      const y = [2, -1, 0, -1, 1, -1];
      const { x, xt } = batchOf(y);
      const [c1, c2, alpha] = [0.5, 2, 3];
      const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1, c2, alpha }, new Rng(9), EVAL);
      const hand = handObjective(m, x, y, 9, c1, c2, alpha, { draws: S, shared, groups: true });
      for (const k of KEYS) close(t[k].dataSync()[0], hand[k], 1e-4, `${variant} separate S=${S} ${k}`);
      // the draw-major layout is another objective (its noise falls on other rows)
      const other = handObjective(m, x, y, 9, c1, c2, alpha, { draws: S, shared });
      assert.ok(Math.abs(other.loss - hand.loss) > 1e-4, `${variant} S=${S}: ${other.loss} vs ${hand.loss}`);
      const rows = m.stepInputs!(Int32Array.from(y), y.length);
      assert.deepEqual([...rows.rep_perm], [0, 2, 4, 0, 2, 4, 0, 2, 4].slice(0, 3 * S).concat([1, 3, 5, 1, 3, 5, 1, 3, 5].slice(0, 3 * S)));
      assert.deepEqual(
        [...rows.rep_lab],
        Array.from({ length: 3 * S }, (_, i) => i),
      );
    }
  }
});

test('alpha_expression replaces loss.alpha; bad aux clamps are refused', () => {
  const m = tinyModel('adgm', { alpha_expression: '0.1*N_total/N_labelled' });
  // N_total = 12, no labelled subset: N_labelled = 12
  close(m.alpha!, 0.1, 1e-12, 'alpha');
  const y = [0, 1, -1];
  const { x, xt } = batchOf(y);
  const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 1, c2: 1, alpha: 100 }, new Rng(3), EVAL);
  close(t.loss.dataSync()[0], handObjective(m, x, y, 3, 1, 1, 0.1).loss, 1e-4, 'loss with α from the expression');
  assert.throws(() => tinyModel('sdgm', { aux_logvar_min: 3, aux_logvar_max: 1 }), /aux_logvar_min/);
});

test('gradients are finite for both models, and an unlabelled batch trains q(y|a,x) and q(a|x)', () => {
  for (const variant of VARIANTS) {
    const m = tinyModel(variant, { alpha_expression: '2' });
    const names = [...m.params.keys()];
    const vars = names.map((n) => m.params.get(n)!);
    for (const y of [
      [0, -1, 2, -1],
      [-1, -1, -1, -1],
    ]) {
      const { xt } = batchOf(y);
      const { value, grads } = tf.variableGrads(
        () => m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 1, c2: 1, alpha: 0 }, new Rng(3), EVAL).loss,
        vars,
      );
      assert.ok(Number.isFinite(value.dataSync()[0]));
      const norms: Record<string, number> = {};
      for (const [i, v] of vars.entries()) {
        const g = Array.from(grads[v.name].dataSync() as Float32Array);
        assert.ok(g.every(Number.isFinite), `${variant} ${names[i]} has a non-finite gradient`);
        const net = names[i].split('/')[0];
        norms[net] = (norms[net] ?? 0) + g.reduce((s, u) => s + u * u, 0);
      }
      for (const net of ['encoder_a', 'classifier', 'encoder', 'decoder', 'decoder_a'])
        assert.ok(norms[net] > 0, `${variant} ${net} gets a gradient (y = ${y})`);
    }
  }
});

test('classify averages q(y|a,x) over seeded draws of a (deterministic); 0 draws reads the mean of q(a|x); the other model methods', () => {
  for (const variant of VARIANTS) {
    const m = tinyModel(variant);
    const x = tf.tensor2d(Array.from(tinyData().train.x.subarray(0, 18)), [3, 6]);
    const p = m.classify(x).arraySync() as number[][];
    p.forEach((r) => close(sum(r), 1, 1e-5, 'probabilities sum to 1'));
    assert.deepEqual(m.classify(x).arraySync(), p, 'the same draws every call');
    const zero = tinyModel(variant, { classify_samples: 0 });
    const xs = x.arraySync() as number[][];
    const pm = zero.classify(x).arraySync() as number[][];
    xs.forEach((xi, i) => {
      const mu = handA(zero, xi, [0, 0, 0]).mu;
      softmax(row(zero.parts.classifier, [...mu, ...xi])).forEach((v, c) => close(pm[i][c], v, 1e-5, `q(y|ā,x) ${i} ${c}`));
    });
    // one draw by hand: the same stream as the model's (a fork of the model's rng)
    const one = tinyModel(variant, { classify_samples: 1 });
    const e = Array.from(new Rng(5).fork('classify').normals(3 * 3));
    const p1 = one.classify(x).arraySync() as number[][];
    xs.forEach((xi, i) => {
      const a = handA(one, xi, e.slice(i * 3, i * 3 + 3)).a;
      softmax(row(one.parts.classifier, [...a, ...xi])).forEach((v, c) => close(p1[i][c], v, 1e-5, `q(y|a,x) ${i} ${c}`));
    });
    assert.deepEqual(m.encodeMean(x).shape, [3, 2]);
    assert.deepEqual(m.reconstruct(x).shape, [3, 6]);
    const z = m.sampleLatent(4, new Rng(1));
    assert.deepEqual(m.decode(z).shape, [4, 6]);
    assert.deepEqual(m.decode(z).arraySync(), m.decodeClass(z, Int32Array.from([0, 1, 2, 0])).arraySync());
  }
});

test('importance weights: log w = log Σ_y p(x,y,a,z_y)/(q(a|x) q(z_y|a,y,x)) with the same draws, by hand', () => {
  for (const variant of VARIANTS) {
    const m = tinyModel(variant);
    const { x, xt } = batchOf([0, 0]);
    const k = 2;
    const [C, K, A] = [m.classes, m.latent, m.aux];
    const lw = m.logImportanceWeights!(xt, k, new Rng(13)).arraySync() as number[][];
    const eps = new Rng(13);
    const epsA = Array.from(eps.normals(2 * k * A));
    const epsZ = Array.from(eps.normals(2 * k * C * K));
    x.forEach((xi, b) =>
      Array.from({ length: k }, (_, i) => {
        const ai = handA(m, xi, epsA.slice((b * k + i) * A, (b * k + i + 1) * A));
        const terms = Array.from({ length: C }, (_, c) => {
          const at = ((b * k + i) * C + c) * K;
          const t = handPass(m, xi, ai.a, c, epsZ.slice(at, at + K));
          return -t.recon - Math.log(C) + t.logpz + t.logpa - t.logqz;
        });
        const mx = Math.max(...terms);
        close(lw[b][i], mx + Math.log(sum(terms.map((v) => Math.exp(v - mx)))) - ai.logqa, 1e-4, `${variant} log w[${b}][${i}]`);
      }),
    );
  }
});

test('class passes by parts: adgm and sdgm terms and importance weights equal those on the concatenated rows', () => {
  for (const variant of VARIANTS)
    for (const extra of [{}, { class_noise: 'shared' }, { encoder: { kind: 'mlp', hidden: [] } }]) {
      const byParts = tinyModel(variant, extra);
      const concat = tinyModel(variant, extra);
      // the networks on the passes start with a product (mlp): without it they read [x, a, onehot(y)] etc. concatenated
      for (const net of [byParts.parts.encoder, byParts.parts.decoder, byParts.parts.decoderA]) assert.ok(net.affineInput);
      for (const net of [concat.parts.encoder, concat.parts.decoder, concat.parts.decoderA]) delete net.affineInput;
      const what = `${variant} ${JSON.stringify(extra)}`;
      for (const y of [
        [2, -1, 0, -1, 1, -1],
        [-1, -1, -1],
        [1, 0, 2],
      ]) {
        const { xt } = batchOf(y);
        const terms = (m: AdgmModel) => m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 0.7, c2: 1.3, alpha: 2 }, new Rng(9), EVAL);
        const a = terms(byParts);
        const b = terms(concat);
        assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
        for (const k of Object.keys(b)) close(a[k].dataSync()[0], b[k].dataSync()[0], 1e-5, `${what} y = ${y}: ${k}`);
      }
      const { xt } = batchOf([0, 0, 0]);
      const wa = byParts.logImportanceWeights!(xt, 2, new Rng(13)).arraySync() as number[][];
      const wb = concat.logImportanceWeights!(xt, 2, new Rng(13)).arraySync() as number[][];
      wb.forEach((r, i) => r.forEach((v, j) => close(wa[i][j], v, 1e-5, `${what} log w[${i}][${j}]`)));
    }
});

const adgmModel = (kind: AdgmVariant) =>
  `model={kind: ${kind}, latent: 4, aux: 4, encoder_a: {kind: mlp, hidden: [32]}, encoder: {kind: mlp, hidden: [32]}, decoder: {kind: mlp, hidden: [32]}, decoder_a: {kind: mlp, hidden: [32]}, classifier: {kind: mlp, hidden: [32]}, alpha_expression: "0.1*N_total/N_labelled"}`;

test('a short ADGM run on 20 labels lowers the objective, classifies far better than chance, and compiles its step', async () => {
  const { r } = await shortSemiSupervisedRun({
    model: adgmModel('adgm'),
    overrides: ['train.clip={norm: 5, value: 1}'],
    // elbo before accuracy: its accuracy term (q(y|ā,x)) is test/accuracy until the accuracy evaluator (classify) overwrites it
    eval: '[{kind: elbo}, {kind: iwae, k: 4}, {kind: accuracy}, {kind: class-samples, n: 3}, {kind: latent-pca, size: 128}, {kind: reconstructions, n: 4}]',
    keys: ['train/kl_a', 'val/kl_a'],
    files: ['class-samples.png', 'latent-pca.png', 'reconstructions.png', 'confusion.json'],
  });
  // the importance-weighted bound is at least the elbo (up to the noise of k = 4)
  assert.ok(
    r.metrics['test/log_likelihood_k4'] > r.metrics['test/elbo'] - 1,
    `${r.metrics['test/log_likelihood_k4']} vs ${r.metrics['test/elbo']}`,
  );
  const rec = JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8'));
  if (rec.backend.name === 'tensorflow') {
    assert.ok(rec.step_modes.length > 0);
    for (const m of rec.step_modes) assert.equal(m.mode, 'graph', `${m.batch}: ${m.reason}`);
  }
});

test('aux_samples: 2 trains as one compiled graph (native) to the numbers the kernel-by-kernel step gives', async () => {
  const dir = tmpDir();
  const run = (name: string, extra: string[]) =>
    runExperiment({
      config: smallConfig(dir),
      runsDir: path.join(dir, name),
      progress: false,
      overrides: [
        adgmModel('sdgm'),
        'model.aux_samples=2',
        'data.labelled=20',
        'train.labelled_per_batch=10',
        'train.epochs=2',
        'train.draws=host',
        'train.step_state=fed',
        'eval=[{kind: accuracy}]',
        ...extra,
      ],
    });
  const compiled = await run('compiled', []);
  const eager = await run('eager', ['train.compile=off']);
  for (const r of [compiled, eager]) assert.equal(r.status, 'FINISHED', r.error);
  const rec = JSON.parse(fs.readFileSync(path.join(compiled.runDir, 'run.json'), 'utf8'));
  if (rec.backend.name === 'tensorflow') for (const m of rec.step_modes) assert.equal(m.mode, 'graph', `${m.batch}: ${m.reason}`);
  const [a, b] = [epochLines(compiled.runDir), epochLines(eager.runDir)];
  for (const k of ['train/loss', 'train/kl_a', 'train/class', 'val/accuracy'])
    for (let e = 0; e < 2; e++) close(a[e][k], b[e][k], 1e-3, `epoch ${e + 1} ${k}`);
});

test('SDGM: an interrupted run resumed gives the uninterrupted metrics', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const overrides = [
    adgmModel('sdgm'),
    'data.labelled=20',
    'train.labelled_per_batch=10',
    'train.epochs=3',
    'eval=[{kind: accuracy}, {kind: elbo}]',
  ];
  const full = await runExperiment({ config: cfg, runsDir: runs, progress: false, overrides });
  assert.equal(full.status, 'FINISHED', full.error);
  let seen = 0;
  const cut = await runExperiment({
    config: cfg,
    runsDir: runs,
    progress: false,
    overrides,
    onEpoch: () => seen++,
    shouldStop: () => seen >= 1,
  });
  assert.equal(cut.status, 'KILLED');
  const resumed = await runExperiment({ resume: cut.runDir, progress: false });
  assert.equal(resumed.status, 'FINISHED', resumed.error);
  for (const k of ['test/accuracy', 'test/elbo', 'test/kl_a', 'val/accuracy', 'val/elbo', 'train/loss'])
    assert.equal(resumed.metrics[k], full.metrics[k], k);
});

test('the shipped ADGM/SDGM configs and the table sweep validate', () => {
  const prev = process.cwd();
  process.chdir(ROOT);
  try {
    for (const f of ['configs/mnist/adgm.yaml', 'configs/mnist/sdgm.yaml']) {
      const { config } = loadConfig(f, [], createRegistry());
      assert.ok((config.published as unknown[]).length >= 1, f);
    }
    const sweep = 'configs/papers/adgm-table.yaml';
    assert.ok(isSweepFile(sweep));
    assert.equal(resolveCells(loadSweep(sweep)).length, 6);
  } finally {
    process.chdir(prev);
  }
});
