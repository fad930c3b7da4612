/**
 * A/B of where the compiled step keeps its state (StepOptions.state): 'session' (in the
 * TensorFlow session, Adam's update fused) against 'fed' (fed in and returned every step),
 * on the benchmark's workloads, in one process on the native backend, interleaved:
 *
 *   node dist/src/bench/state-ab.js [WORKLOAD=vae-mlp] [STEPS=200] [ROUNDS=10]
 *
 * Both arms are built from one seed and warmed up (compiled) first; then every round runs
 * STEPS steps of each, the order alternating between rounds. Prints ms per step and the
 * process's CPU time per step (all threads) of every round, their medians, and the median
 * of the per-round ratios (a neighbour's load moves both arms of a round alike).
 */
import { selectBackend, getTf } from '../runtime/backend';
import { buildWorkload, WORKLOADS } from './workload';

async function main(): Promise<void> {
  const [name = 'vae-mlp', stepsArg = '200', roundsArg = '10'] = process.argv.slice(2);
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`unknown workload ${name} (${WORKLOADS.map((x) => x.name).join(', ')})`);
  const steps = Number(stepsArg);
  const rounds = Number(roundsArg);
  const info = await selectBackend('tensorflow');
  const tf = getTf();
  const keys = ['session', 'fed'] as const;
  const arms = { session: await buildWorkload(tf, w, 0, { state: 'session' }), fed: await buildWorkload(tf, w, 0, { state: 'fed' }) };
  for (const k of keys) {
    arms[k].run({ steps: 5, minSeconds: 0, maxSeconds: 120 });
    console.log(`${k}: ${JSON.stringify(arms[k].modes)}`);
  }
  const ms = { session: [] as number[], fed: [] as number[] };
  const cpu = { session: [] as number[], fed: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const k of r % 2 ? [...keys].reverse() : keys) {
      const c0 = process.cpuUsage();
      const o = arms[k].run({ steps, minSeconds: 0, maxSeconds: 600 });
      const c = process.cpuUsage(c0);
      ms[k].push((1000 * o.seconds) / o.steps);
      cpu[k].push((c.user + c.system) / 1000 / o.steps);
    }
    console.log(
      `round ${r + 1}: session ${ms.session[r].toFixed(2)} ms (CPU ${cpu.session[r].toFixed(2)} ms), fed ${ms.fed[r].toFixed(2)} ms (CPU ${cpu.fed[r].toFixed(2)} ms)`,
    );
  }
  const median = (a: number[]) => {
    const s = [...a].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const ratios = ms.session.map((v, i) => v / ms.fed[i]);
  const cpuRatios = cpu.session.map((v, i) => v / cpu.fed[i]);
  console.log(
    `${name} (${info.name}, ${rounds} rounds of ${steps} steps): ms/step session ${median(ms.session).toFixed(2)}, fed ${median(ms.fed).toFixed(2)}; ` +
      `session/fed per round ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}); ` +
      `CPU/step ${median(cpu.session).toFixed(2)} vs ${median(cpu.fed).toFixed(2)} ms (${median(cpuRatios).toFixed(3)})`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
