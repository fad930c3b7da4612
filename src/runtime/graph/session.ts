import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tfc from '@tensorflow/tfjs-core';
import { writeSavedModel, type GraphNode } from './saved-model';
import { nativeBackend, type NodeBackend } from './trace';
import { withSessionConfig } from './session-config';

const outputName = (n: string) => (n.includes(':') ? n : `${n}:0`);

/**
 * A graph loaded into a TensorFlow session through tfjs-node's SavedModel support:
 * one `run` is one TF_SessionRun (Grappler-optimised, kernels fused where TensorFlow
 * can), instead of one eager dispatch per kernel. Inputs and outputs are ordinary
 * tensors of the native backend. With `xla`, XLA's auto-clustering compiles the graph's
 * clusters for this CPU (its fusions of elementwise kernels use the host's vector width),
 * whatever ELBO_TF_SESSION says for the other sessions.
 */
export class GraphSession {
  private id: number;
  private inputs: { name: string }[];
  private outputs: string[];
  private backend: NodeBackend;

  constructor(tf: typeof tfc, nodes: GraphNode[], inputNames: string[], outputNames: string[], o: { xla?: boolean } = {}) {
    const backend = nativeBackend(tf);
    if (!backend) throw new Error('a graph session needs the tensorflow backend');
    this.backend = backend;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'elbo-graph-'));
    try {
      writeSavedModel(dir, nodes);
      this.id = withSessionConfig(o.xla ? { xla: 'on' } : {}, () => this.backend.loadSavedModelMetaGraph(dir, 'serve'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    this.inputs = inputNames.map((n) => ({ name: outputName(n) }));
    this.outputs = outputNames.map(outputName);
  }

  /**
   * The outputs for these inputs. `names` feeds other endpoints instead of the inputs the
   * session was made with (TensorFlow lets a run feed any node's output, overriding it).
   */
  run(inputs: tfc.Tensor[], names?: string[]): tfc.Tensor[] {
    return this.backend.runSavedModel(
      this.id,
      inputs,
      names ? names.map((name) => ({ name: outputName(name) })) : this.inputs,
      this.outputs,
    );
  }

  /** The named outputs for inputs fed at the named endpoints (any node's output, e.g. a variable's reader). */
  runWith(inputs: tfc.Tensor[], inputNames: string[], outputNames: string[]): tfc.Tensor[] {
    return this.backend.runSavedModel(
      this.id,
      inputs,
      inputNames.map((name) => ({ name: outputName(name) })),
      outputNames.map(outputName),
    );
  }

  dispose(): void {
    this.backend.deleteSavedModel(this.id);
  }
}
