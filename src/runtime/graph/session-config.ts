import { ProtoWriter } from './protobuf';
import { UserError } from '../../errors';

/**
 * The TensorFlow configuration of the native backend (a tensorflow.ConfigProto), given to
 * its eager context and to every graph session it loads (the compiled step, compiled
 * evaluations) through ELBO_TF_CONFIG, which the binding built by setup.sh reads.
 *
 * `ELBO_TF_SESSION` changes it for comparisons: comma-separated `key=value`, e.g.
 * `intra=2,inter=1,remapper=off,xla=on`. The defaults are what measured fastest here
 * (BENCHMARKS.md: the levers).
 */
export interface SessionConfig {
  /** Threads one kernel may use (0: TensorFlow's choice, one per core). */
  intra: number;
  /** Kernels run at once (0: TensorFlow's choice). */
  inter: number;
  /** Grappler's remapper (fused matmul + bias + activation kernels). */
  remapper: 'on' | 'off';
  /** XLA auto-clustering (compiles clusters of the graph with XLA on the CPU too). */
  xla: 'on' | 'off';
}

export const SESSION_DEFAULTS: SessionConfig = { intra: 0, inter: 0, remapper: 'on', xla: 'off' };

/** Parse ELBO_TF_SESSION (`key=value,...`) over the defaults. */
export function parseSessionConfig(spec: string | undefined, where = 'ELBO_TF_SESSION'): SessionConfig {
  const c: SessionConfig = { ...SESSION_DEFAULTS };
  for (const part of (spec ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [key, value] = part.split('=').map((s) => s.trim());
    if (key === 'intra' || key === 'inter') {
      if (!/^\d+$/.test(value ?? '')) throw new UserError(`${key} takes a thread count (0: TensorFlow's choice), not '${value}'`, where);
      c[key] = Number(value);
    } else if (key === 'remapper' || key === 'xla') {
      if (value !== 'on' && value !== 'off') throw new UserError(`${key} takes on or off, not '${value}'`, where);
      c[key] = value;
    } else {
      throw new UserError(`unknown setting '${key}' (allowed: intra, inter, remapper, xla)`, where);
    }
  }
  return c;
}

/** The ConfigProto's bytes (field numbers of tensorflow/core/protobuf/config.proto and rewriter_config.proto). */
export function configProto(c: SessionConfig): Uint8Array {
  const w = new ProtoWriter();
  if (c.intra) w.int(2, c.intra); // intra_op_parallelism_threads
  if (c.inter) w.int(5, c.inter); // inter_op_parallelism_threads
  const graph = new ProtoWriter();
  // OptimizerOptions.global_jit_level: ON_1 = 1, OFF = -1
  graph.message(3, new ProtoWriter().int(5, c.xla === 'on' ? 1 : -1));
  // RewriterConfig.remapping: ON = 1, OFF = 2
  graph.message(10, new ProtoWriter().int(14, c.remapper === 'on' ? 1 : 2));
  w.message(10, graph); // graph_options
  return w.finish();
}

/** ELBO_TF_CONFIG's value, as the binding reads it: the ConfigProto's bytes in hex. */
const configHex = (c: SessionConfig) => Buffer.from(configProto(c)).toString('hex');

/** XLA's flag that lets a session's configuration (global_jit_level) turn XLA on for the CPU. */
const CPU_JIT = '--tf_xla_cpu_global_jit';

/**
 * Set ELBO_TF_CONFIG (and TF_XLA_FLAGS, so that a session configured with XLA gets it on
 * the CPU: TensorFlow reads the flags once) before the native binding loads; returns the
 * configuration for the run record.
 */
export function applySessionConfig(env: NodeJS.ProcessEnv = process.env): SessionConfig {
  const c = parseSessionConfig(env.ELBO_TF_SESSION);
  env.ELBO_TF_CONFIG = configHex(c);
  if (!(env.TF_XLA_FLAGS ?? '').includes(CPU_JIT)) env.TF_XLA_FLAGS = [env.TF_XLA_FLAGS, CPU_JIT].filter(Boolean).join(' ');
  return c;
}

/**
 * `f` (which loads a session) with `changes` over the process's session configuration
 * (ELBO_TF_SESSION), as the binding reads ELBO_TF_CONFIG when it loads a session; the
 * configuration is restored after.
 */
export function withSessionConfig<T>(changes: Partial<SessionConfig>, f: () => T, env: NodeJS.ProcessEnv = process.env): T {
  if (!Object.keys(changes).length) return f();
  const before = env.ELBO_TF_CONFIG;
  env.ELBO_TF_CONFIG = configHex({ ...parseSessionConfig(env.ELBO_TF_SESSION), ...changes });
  try {
    return f();
  } finally {
    if (before === undefined) delete env.ELBO_TF_CONFIG;
    else env.ELBO_TF_CONFIG = before;
  }
}
