/**
 * A mapping as parsed YAML or JSON gives it: an object that is neither null nor a list. In
 * util/ (the bottom layer) so that the registry, the config loader and the sweep comparer
 * share one check.
 */
export function isMapping(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}
