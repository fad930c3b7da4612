import type { PluginKind } from '../contracts';
/**
 * The runtime half of each kind's contract (the types in ./types are the compile-time
 * half, which a plain-JavaScript plugin never meets): what an instance must have, checked
 * once when the registry creates it. Returns why it falls short, or null.
 */
export function instanceProblem(kind: PluginKind, inst: unknown): string | null {
  if (kind === 'schedule')
    return typeof inst === 'function' ? null : `a schedule is a function (progress) => number, not ${describe(inst)}`;
  if (!inst || typeof inst !== 'object') return `create returned ${describe(inst)}, not an object`;
  const o = inst as Record<string, unknown>;
  const missing: string[] = [];
  const fn = (...names: string[]) => names.forEach((n) => typeof o[n] !== 'function' && missing.push(`${n}() (a function)`));
  const map = (n: string) => !(o[n] instanceof Map) && missing.push(`${n} (a Map of tf.Variables by name)`);
  const count = (n: string, min: number) =>
    !(Number.isInteger(o[n]) && (o[n] as number) >= min) && missing.push(`${n} (an integer ≥ ${min}, got ${describe(o[n])})`);
  switch (kind) {
    case 'dataset': {
      count('dim', 1);
      count('classes', 0);
      if (!Array.isArray(o.shape)) missing.push('shape (e.g. [28, 28, 1])');
      for (const split of ['train', 'test']) {
        const s = o[split] as { x?: unknown; n?: unknown } | undefined;
        if (!s || !(s.x instanceof Float32Array) || !Number.isInteger(s.n)) missing.push(`${split} ({x: Float32Array, y, n})`);
      }
      break;
    }
    case 'network':
      map('params');
      if (o.buffers !== undefined) map('buffers');
      fn('apply');
      break;
    case 'prior':
      count('paramsPerLatent', 1);
      fn('kl', 'sample', 'mean', 'sampleFromPrior');
      if (o.params !== undefined) map('params');
      break;
    case 'model':
      map('params');
      if (o.buffers !== undefined) map('buffers');
      count('latent', 0);
      fn('terms', 'encodeMean', 'reconstruct', 'decode', 'sampleLatent');
      break;
    case 'evaluator':
      fn('run');
      break;
    case 'tracker':
      fn('start', 'logMetrics', 'logArtifact', 'finish');
      break;
    case 'optimizer':
      fn('apply');
      map('state');
      break;
  }
  return missing.length ? `it lacks ${missing.join(', ')}` : null;
}

function describe(v: unknown): string {
  if (v === undefined || v === null) return String(v);
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object';
  return JSON.stringify(v);
}
