/**
 * The run's only source of randomness. Every draw (split, shuffle, initialisation,
 * ε, η, dynamic binarisation) comes from a stream forked from the run's seed by a
 * label, so that adding a draw in one place never shifts the draws in another, and a
 * resumed run reproduces the draws of an uninterrupted one (streams are forked per
 * epoch). Generator: xoshiro128**, seeded through splitmix32.
 */
export class Rng {
  private s: Uint32Array;
  private spareNormal: number | null = null;

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

  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * n draws of `normal()` in turn: the same numbers, and the same state and spare after.
   * The pairs are made with the generator's state in locals (as `bernoulli` does): a
   * quarter less CPU on the 250,000 normals of an IWAE pass at k = 5000.
   */
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    let i = 0;
    if (n > 0 && this.spareNormal !== null) out[i++] = this.normal();
    const s = this.s;
    let s0 = s[0] | 0;
    let s1 = s[1] | 0;
    let s2 = s[2] | 0;
    let s3 = s[3] | 0;
    for (; i < n; i += 2) {
      // normal()'s pair: u in (0, 1), then v in [0, 1); nextUint32's step written out on the locals
      let u = 0;
      let v = 0;
      for (let j = 0; j < 2; j++) {
        const m = Math.imul(s1, 5);
        const r = (Math.imul((m << 7) | (m >>> 25), 9) >>> 0) / 4294967296;
        const t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = (s3 << 11) | (s3 >>> 21);
        if (j === 0) {
          u = r;
          // (u = 0 is drawn again, as normal() does)
          if (u === 0) j--;
        } else v = r;
      }
      const r = Math.sqrt(-2 * Math.log(u));
      out[i] = r * Math.cos(2 * Math.PI * v);
      const second = r * Math.sin(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = second;
      else this.spareNormal = second;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return out;
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
    const c = new Rng(this.s);
    c.spareNormal = this.spareNormal;
    return c;
  }

  state(): number[] {
    return Array.from(this.s);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
