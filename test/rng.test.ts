import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as path from 'path';
import { Rng, ZIG_R, ZIG_V, ZIG_X } from '../src/runtime/rng';

// The statistical tests below draw from fixed seeds, so each passes or fails the same way every
// time; their tolerances are 4.5 to 5 standard errors of the statistic (or a p of 10⁻⁴ for the
// goodness-of-fit tests), so that a sampler a few per cent off in any part of its density fails.

/** The standard normal density. */
const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

/**
 * Q(x) = P(Z > x) for x ≥ 0, to about 10⁻¹⁴ (Marsaglia 2004): below 3, ½ − φ(x) Σ x^(2n+1)/(2n+1)!!;
 * above, φ(x) / (x + 1/(x + 2/(x + 3/(x + …)))). Independent of the sampler's own tables.
 */
function upper(x: number): number {
  if (x < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; term > 1e-17 * sum; n++) sum += term *= (x * x) / (2 * n + 1);
    return 0.5 - phi(x) * sum;
  }
  let c = 0;
  for (let k = 300; k >= 1; k--) c = k / (x + c);
  return phi(x) / (x + c);
}
/** The standard normal CDF. */
const Phi = (x: number) => (x >= 0 ? 1 - upper(x) : upper(-x));

/** The χ² quantile with k degrees of freedom at the standard normal quantile z (Wilson & Hilferty). */
const chi2Quantile = (k: number, z: number) => k * (1 - 2 / (9 * k) + z * Math.sqrt(2 / (9 * k))) ** 3;

const N = 1 << 20;
/** 2²⁰ draws of one stream, as a training run takes them (`normals`, in float32). */
const draws = new Rng(20261205).fork('statistics').normals(N);

test('the normal CDF helper gives the published two-sided tail probabilities', () => {
  // P(|Z| > k) for k = 1 … 5, to 15 digits (Abramowitz & Stegun 26.2; the 68–95–99.7 rule)
  const published = [0.317310507862914, 0.0455002638963584, 0.00269979606326019, 6.33424836662399e-5, 5.73303143758e-7];
  published.forEach((p, i) => assert.ok(Math.abs(2 * upper(i + 1) - p) < 1e-14 + 1e-11 * p, `P(|Z| > ${i + 1})`));
});

test('the ziggurat tables: 256 layers of area V that close at the top, R and V as Marsaglia & Tsang give them', () => {
  assert.equal(ZIG_X.length, 257);
  // Marsaglia & Tsang (2000), 256 layers: r = 3.6541528853610088, v = 4.92867323399e-3; V is
  // computed from R here, and agrees with theirs to 11 digits (theirs closes the top layer to
  // 2·10⁻¹¹, this one to 10⁻¹⁶)
  assert.equal(ZIG_R, 3.6541528853610088);
  assert.ok(Math.abs(ZIG_V - 4.92867323399e-3) < 5e-14);
  // the base layer: the rectangle [0, R] × [0, f(R)] and the tail, ∫_R^∞ f = √(2π) Q(R)
  const f = (x: number) => Math.exp(-0.5 * x * x);
  assert.ok(Math.abs(ZIG_R * f(ZIG_R) + Math.sqrt(2 * Math.PI) * upper(ZIG_R) - ZIG_V) < 1e-16);
  assert.ok(Math.abs(ZIG_X[0] * f(ZIG_R) - ZIG_V) < 1e-17);
  assert.equal(ZIG_X[1], ZIG_R);
  // every other layer: x from 0 to X[i], y from f(X[i]) to f(X[i + 1]), area V; the top one ends at f(0) = 1
  assert.equal(ZIG_X[256], 0);
  for (let i = 1; i < 256; i++) {
    assert.ok(ZIG_X[i + 1] < ZIG_X[i], `layer ${i} narrows upwards`);
    const area = ZIG_X[i] * (f(ZIG_X[i + 1]) - f(ZIG_X[i]));
    assert.ok(Math.abs(area - ZIG_V) < 1e-15, `layer ${i}: area ${area}`);
  }
});

test('normals: mean 0, variance 1, skewness 0 and excess kurtosis 0 on 2²⁰ draws, within 5 standard errors', () => {
  let m1 = 0;
  for (const x of draws) m1 += x;
  const mean = m1 / N;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (const x of draws) {
    const d = x - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= N;
  m3 /= N;
  m4 /= N;
  // standard errors for normal data: √(1/n), √(2/n), √(6/n), √(24/n)
  const se = (v: number) => 5 * Math.sqrt(v / N);
  assert.ok(Math.abs(mean) < se(1), `mean ${mean}`);
  assert.ok(Math.abs(m2 - 1) < se(2), `variance ${m2}`);
  assert.ok(Math.abs(m3 / m2 ** 1.5) < se(6), `skewness ${m3 / m2 ** 1.5}`);
  assert.ok(Math.abs(m4 / (m2 * m2) - 3) < se(24), `excess kurtosis ${m4 / (m2 * m2) - 3}`);
  // and the signs: half of each (the sign is a bit of its own)
  const positive = draws.reduce((a, x) => a + (x > 0 ? 1 : 0), 0);
  assert.ok(Math.abs(positive / N - 0.5) < 5 * Math.sqrt(0.25 / N), `${positive} positive`);
});

test('normals: Kolmogorov–Smirnov against the normal CDF, and χ² over 162 bins (p > 10⁻⁴)', () => {
  const sorted = Float64Array.from(draws).sort();
  let d = 0;
  for (let i = 0; i < N; i++) {
    const F = Phi(sorted[i]);
    d = Math.max(d, (i + 1) / N - F, F - i / N);
  }
  // the limiting distribution of √n D: P(√n D > 1.95) ≈ 0.001, P(> 2.10) ≈ 0.0003
  assert.ok(Math.sqrt(N) * d < 2.1, `KS √n·D = ${Math.sqrt(N) * d}`);
  // χ²: bins of width 0.05 over [−4, 4] and the two tails beyond (the layers' edges fall inside
  // them, so a wrong wedge or rectangle shows as a step in the counts)
  const edges = Array.from({ length: 161 }, (_, i) => -4 + i * 0.05);
  const counts = new Float64Array(162);
  for (const x of draws) counts[x < -4 ? 0 : x >= 4 ? 161 : 1 + Math.min(159, Math.floor((x + 4) / 0.05))]++;
  let chi2 = 0;
  for (let b = 0; b < 162; b++) {
    const lo = b === 0 ? -Infinity : edges[b - 1];
    const hi = b === 161 ? Infinity : edges[b];
    const expected = N * ((hi === Infinity ? 1 : Phi(hi)) - (lo === -Infinity ? 0 : Phi(lo)));
    chi2 += (counts[b] - expected) ** 2 / expected;
  }
  assert.ok(chi2 < chi2Quantile(161, 3.72), `χ² = ${chi2} on 161 degrees of freedom`);
});

test('normals: the frequencies beyond 2, 3, 4 and 4.5σ are the normal tail probabilities, within 4.5 standard errors (10⁷ draws)', () => {
  const n = 10_000_000;
  const x = new Rng(7).fork('tails').normals(n);
  const beyond = [2, 3, 4, 4.5].map((k) => ({ k, count: 0, p: 2 * upper(k) }));
  // the draws beyond R come from the tail method: their own check, KS on P(|X| > t | |X| > R) = Q(t)/Q(R)
  const tail: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[i]);
    for (const b of beyond) if (a > b.k) b.count++;
    if (a > ZIG_R) tail.push(a);
  }
  for (const { k, count, p } of beyond) {
    const se = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(count - n * p) < 4.5 * se, `beyond ${k}σ: ${count} against ${(n * p).toFixed(1)} ± ${se.toFixed(1)}`);
  }
  tail.sort((a, b) => a - b);
  const QR = upper(ZIG_R);
  let d = 0;
  tail.forEach((t, i) => {
    const F = 1 - upper(t) / QR;
    d = Math.max(d, (i + 1) / tail.length - F, F - i / tail.length);
  });
  assert.ok(tail.length > 2000, `${tail.length} draws beyond R`);
  assert.ok(Math.sqrt(tail.length) * d < 2.1, `the tail beyond R: KS √n·D = ${Math.sqrt(tail.length) * d} over ${tail.length} draws`);
});

test('normals: no correlation between consecutive draws, nor between their squares (|r| < 5/√n)', () => {
  let xy = 0;
  let sq = 0;
  let lag2 = 0;
  for (let i = 0; i + 2 < N; i++) {
    xy += draws[i] * draws[i + 1];
    lag2 += draws[i] * draws[i + 2];
    // (x² − 1)(y² − 1) has variance 4 when x and y are independent normals
    sq += ((draws[i] ** 2 - 1) * (draws[i + 1] ** 2 - 1)) / 2;
  }
  const bound = 5 / Math.sqrt(N);
  assert.ok(Math.abs(xy / N) < bound, `lag-1 correlation ${xy / N}`);
  assert.ok(Math.abs(lag2 / N) < bound, `lag-2 correlation ${lag2 / N}`);
  assert.ok(Math.abs(sq / N) < bound, `lag-1 correlation of the squares ${sq / N}`);
});

test('normals(n) are normal() drawn n times in turn: the same numbers and state after, however the draws are split', () => {
  for (const seed of [1, 2, 99, Uint32Array.of(1, 0, 3, 4), Uint32Array.of(7, 0, 0, 9)]) {
    const batch = new Rng(seed);
    const turn = new Rng(seed);
    // 100,000 draws: about 1,500 off the rectangles (wedges) and 25 from the tail
    for (const n of [0, 1, 2, 3, 7, 0, 1, 1, 1000, 5, 4, 13, 100_000]) {
      const got = batch.normals(n);
      const want = Float32Array.from({ length: n }, () => turn.normal());
      assert.deepEqual(got, want, `seed ${seed}, ${n} normals`);
      assert.deepEqual(batch.state(), turn.state(), `seed ${seed}, after ${n} normals`);
      assert.equal(batch.clone().normal(), turn.clone().normal(), `seed ${seed}, the next normal after ${n} normals`);
    }
  }
  const whole = new Rng(5).normals(30_000);
  const split = new Rng(5);
  const parts = [split.normals(1), split.normals(9_999), split.normals(17), split.normals(19_983)];
  assert.deepEqual(Float32Array.from(parts.flatMap((p) => Array.from(p))), whole);
});

test('the normal stream is pinned: the same seed gives the same numbers, in this process and in another', () => {
  // a regression pin of the stream itself (the ziggurat on xoshiro128**, since 2026-12-05): a
  // change to the generator or the sampler changes every run's draws, and should be deliberate
  const first = new Rng(1).fork('pin').normals(6);
  const pinned = [
    -0.29459235072135925, 0.6760040521621704, 1.0870393514633179, -0.932507336139679, -1.4356634616851807, -0.11604588478803635,
  ];
  assert.deepEqual(Array.from(first), pinned);
  // the bits behind them: per draw two words a, b; the layer is a's low 8 bits, the sign its
  // bit 8, the magnitude u = (a's top 21 bits · 2³² + b) / 2⁵³; inside the layer's rectangle
  // (u < X[l + 1] / X[l], as all six are) the draw is ±u·X[l]
  const words = new Rng(1).fork('pin');
  for (const want of pinned) {
    const a = words.nextUint32();
    const b = words.nextUint32();
    const l = a & 255;
    const u = ((a >>> 11) * 2 ** 32 + b) / 2 ** 53;
    assert.ok(u < ZIG_X[l + 1] / ZIG_X[l]);
    assert.equal(Math.fround((a & 256 ? -1 : 1) * u * ZIG_X[l]), want);
  }
  assert.deepEqual(new Rng(1).fork('pin').normals(6), first);
  // a fresh process (a worker thread, a resumed run) draws the same 100,000 numbers
  const digest = (a: Float32Array) => {
    let h = 2166136261;
    for (const w of new Uint32Array(a.buffer)) h = Math.imul(h ^ w, 16777619) >>> 0;
    return h;
  };
  const rngPath = path.join(__dirname, '..', 'src', 'runtime', 'rng.js');
  const other = execFileSync(
    process.execPath,
    [
      '-e',
      `const { Rng } = require(${JSON.stringify(rngPath)}); const a = new Rng(42).fork('x').normals(100000); let h = 2166136261;` +
        `for (const w of new Uint32Array(a.buffer)) h = Math.imul(h ^ w, 16777619) >>> 0; process.stdout.write(String(h));`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(Number(other), digest(new Rng(42).fork('x').normals(100_000)));
});
