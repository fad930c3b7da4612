/**
 * The run's only source of randomness. Every draw (split, shuffle, initialisation,
 * ε, η, dynamic binarisation) comes from a stream forked from the run's seed by a
 * label, so that adding a draw in one place never shifts the draws in another, and a
 * resumed run reproduces the draws of an uninterrupted one (streams are forked per
 * epoch). Generator: xoshiro128**, seeded through splitmix32.
 *
 * Standard normals (`normal`, `normals`) come from a ziggurat on the same stream
 * (Marsaglia & Tsang 2000, 256 layers; the layer, the sign and a 53-bit magnitude from
 * disjoint bits of two words, as Doornik's ZIGNOR keeps the layer apart from the uniform;
 * the tail by Marsaglia's exact method): about half the CPU of the Box-Muller pairs
 * drawn before 2026-12-05, whose log, square root, sine and cosine cost about 5 ms per
 * 250,000 draws. This changed every run's draws from that date (the same distribution,
 * different numbers): runs made before it do not reproduce bit for bit after it.
 */
export class Rng {
  private s: Uint32Array;

  constructor(seed: number | Uint32Array) {
    if (typeof seed === 'number') {
      this.s = new Uint32Array(4);
      let x = seed >>> 0;
      for (let i = 0; i < 4; i++) {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        this.s[i] = (z ^ (z >>> 16)) >>> 0;
      }
      if (this.s.every((v) => v === 0)) this.s[0] = 1;
    } else {
      this.s = Uint32Array.from(seed);
    }
  }

  /** A stream for one purpose, derived from this one's seed state and a label. */
  fork(label: string | number): Rng {
    let h = 2166136261;
    const str = String(label);
    for (let i = 0; i < str.length; i++) h = Math.imul(h ^ str.charCodeAt(i), 16777619) >>> 0;
    const child = new Uint32Array(4);
    for (let i = 0; i < 4; i++) child[i] = (this.s[i] ^ Math.imul(h + i * 0x632be5ab, 0x9e3779b1)) >>> 0;
    const r = new Rng(0);
    r.s = child;
    // warm up so that nearby labels decorrelate
    for (let i = 0; i < 8; i++) r.nextUint32();
    return r;
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** A standard normal draw: two words of the stream, more for the 1.5 % of draws off the ziggurat's rectangles. */
  normal(): number {
    const a = this.nextUint32() | 0;
    return this.ziggurat(a, this.nextUint32());
  }

  /**
   * n draws of `normal()` in turn: the same numbers, and the same state after. The
   * rectangles' draws (98.5 % of them) are made with the generator's state in locals (as
   * `bernoulli` does); the rest by `normal()`'s code on the stored state.
   */
  normals(n: number): Float32Array {
    if (!normalsWarm) warmNormals();
    const out = new Float32Array(n);
    const s = this.s;
    let s0 = s[0] | 0;
    let s1 = s[1] | 0;
    let s2 = s[2] | 0;
    let s3 = s[3] | 0;
    // the tables in locals too (module-level bindings are looked up on every use)
    const width = ZIG_X;
    const inner = ZIG_INNER;
    for (let i = 0; i < n; i++) {
      // two steps of nextUint32, written out on the locals
      let m = Math.imul(s1, 5);
      const a = Math.imul((m << 7) | (m >>> 25), 9);
      let t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      m = Math.imul(s1, 5);
      const b = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      // ziggurat()'s first test, inline
      const layer = a & 255;
      const u = ((a >>> 11) * 4294967296 + b) * 1.1102230246251565e-16;
      if (u < inner[layer]) {
        const x = u * width[layer];
        out[i] = a & 256 ? -x : x;
        continue;
      }
      s[0] = s0;
      s[1] = s1;
      s[2] = s2;
      s[3] = s3;
      out[i] = this.ziggurat(a, b);
      s0 = s[0] | 0;
      s1 = s[1] | 0;
      s2 = s[2] | 0;
      s3 = s[3] | 0;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return out;
  }

  /** Uniform in [0, 1) with 53 bits (two words): the ziggurat's wedges and tail. */
  private uniform53(): number {
    const a = this.nextUint32();
    return ((a >>> 11) * 4294967296 + this.nextUint32()) * TWO_TO_MINUS_53;
  }

  /**
   * The standard normal that the words a (as int32), b start: layer a & 255, sign bit 8,
   * magnitude u in [0, 1) from a's top 21 bits and b's 32. Inside the layer's inner part,
   * ±u·ZIG_X[layer]; in a wedge, that x if a uniform height (drawn from the stream) falls under
   * f(x); beyond R, Marsaglia's exact tail (two uniforms per try); otherwise two fresh words.
   */
  private ziggurat(a: number, b: number): number {
    for (;;) {
      const layer = a & 255;
      const u = ((a >>> 11) * 4294967296 + b) * TWO_TO_MINUS_53;
      const x = u * ZIG_X[layer];
      if (u < ZIG_INNER[layer]) return a & 256 ? -x : x;
      if (layer === 0) {
        // x > R: R + e₁/R, e₁ and e₂ exponential, accepted when 2e₂ > (e₁/R)²
        for (;;) {
          const t = -Math.log1p(-this.uniform53()) / ZIG_R;
          const e = -Math.log1p(-this.uniform53());
          if (e + e > t * t) return a & 256 ? -(ZIG_R + t) : ZIG_R + t;
        }
      }
      if (ZIG_F[layer] + this.uniform53() * (ZIG_F[layer + 1] - ZIG_F[layer]) < zigF(x)) return a & 256 ? -x : x;
      a = this.nextUint32() | 0;
      b = this.nextUint32();
    }
  }

  uniforms(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform();
    return out;
  }

  /**
   * A 0/1 draw per value of `p` (probabilities in [0, 1]), into `out` (may be `p` itself):
   * 1 where a uniform draw is below the value. The same numbers, and the same state after,
   * as `uniform() < p[i]` in turn; nextUint32's step with the state held in locals, a
   * quarter less CPU on a batch (dynamic binarisation draws one per pixel every step).
   */
  bernoulli(p: Float32Array, out = new Float32Array(p.length)): Float32Array {
    const s = this.s;
    let s0 = s[0] | 0;
    let s1 = s[1] | 0;
    let s2 = s[2] | 0;
    let s3 = s[3] | 0;
    for (let i = 0; i < p.length; i++) {
      const m = Math.imul(s1, 5);
      const u = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = u / 4294967296 < p[i] ? 1 : 0;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return out;
  }

  /** Fisher–Yates permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** An independent copy at the same position (same future draws). */
  clone(): Rng {
    return new Rng(this.s);
  }

  state(): number[] {
    return Array.from(this.s);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const TWO_TO_MINUS_53 = 2 ** -53;

/**
 * V8 compiles `normals` during its first long call (250,000 draws), before the branch off
 * the rectangles and the code after the loop have run often enough to leave it type
 * feedback; that code then deoptimises at the end of the call, and in about half the
 * processes every later call ran the on-stack-replacement version instead, 3.1 against
 * 2.4 ms per 250,000 draws. Ten short calls first (1,280 draws of a stream of their own,
 * about 2 ms once per process) leave the feedback before the compiler looks.
 */
let normalsWarm = false;
function warmNormals(): void {
  normalsWarm = true;
  const r = new Rng(1);
  for (let k = 0; k < 10; k++) r.normals(128);
}

/**
 * The ziggurat's 256 layers of equal area V under f(x) = exp(−x²/2), x ≥ 0 (Marsaglia &
 * Tsang 2000; Doornik 2005's layout), in float64, computed once at load. Layer 0 is the
 * base strip [0, R] × [0, f(R)] with the tail beyond R, as a rectangle of width
 * ZIG_X[0] = V / f(R); layer i ≥ 1 spans x in [0, ZIG_X[i]] and y in [f(ZIG_X[i]),
 * f(ZIG_X[i + 1])], with ZIG_X[1] = R and ZIG_X[256] = 0. ZIG_INNER[i] = ZIG_X[i + 1] / ZIG_X[i]:
 * the part of layer i inside the curve for every y. R is Marsaglia & Tsang's for 256 layers;
 * V = R f(R) + ∫_R^∞ f, the tail's integral by the Mills ratio's continued fraction,
 * which closes the top layer to 10⁻¹⁵ (test/rng.test.ts).
 */
export const ZIG_R = 3.6541528853610088;
const ZIG_N = 256;
const zigF = (x: number) => Math.exp(-0.5 * x * x);
/** ∫_R^∞ f / f(R) = 1 / (R + 1 / (R + 2 / (R + 3 / (R + …)))), evaluated from the 300th term back. */
const ZIG_MILLS = (() => {
  let c = 0;
  for (let k = 300; k >= 1; k--) c = k / (ZIG_R + c);
  return 1 / (ZIG_R + c);
})();
export const ZIG_V = zigF(ZIG_R) * (ZIG_R + ZIG_MILLS);
export const ZIG_X = new Float64Array(ZIG_N + 1);
const ZIG_F = new Float64Array(ZIG_N + 1);
const ZIG_INNER = new Float64Array(ZIG_N);
ZIG_X[0] = ZIG_V / zigF(ZIG_R);
ZIG_X[1] = ZIG_R;
for (let i = 2; i < ZIG_N; i++) ZIG_X[i] = Math.sqrt(-2 * Math.log(ZIG_V / ZIG_X[i - 1] + zigF(ZIG_X[i - 1])));
ZIG_X[ZIG_N] = 0;
for (let i = 0; i <= ZIG_N; i++) ZIG_F[i] = zigF(ZIG_X[i]);
for (let i = 0; i < ZIG_N; i++) ZIG_INNER[i] = ZIG_X[i + 1] / ZIG_X[i];
