import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';
import type { Rng } from '../runtime/rng';

/**
 * The training/evaluation switch of one model (docs/plugins.md "Training and evaluation
 * phase"): made once per model build (`{ training: false }`), handed to its networks as
 * `ctx.phase`, and set to `training: true` by the training step only around its forward
 * pass (eager, and while the compiled step is traced). Everything else (validation,
 * test, evaluators, export) runs with `training: false`. A network that behaves
 * differently while training (batch normalisation: batch statistics and running
 * averages) reads `phase.training` when it computes, not when it is created.
 */
export interface Phase {
  training: boolean;
  /**
   * While `training`: the step's random stream, for networks that draw while training
   * (dropout masks). Its array draws (`uniforms`, `normals`) become inputs of the compiled
   * step like the priors' noise; scalar draws cannot. Absent outside the training step.
   */
  rng?: Rng;
  /**
   * While `training`: batch normalisation takes the first `normSplit` rows of its input and
   * the rest as two batches, each normalised by its own statistics, and moves its running
   * averages by the second's only (a semi-supervised model's labelled and unlabelled rows,
   * laid out labelled first: `norm_groups: separate`, docs/models.md). Set by the model
   * around the networks it applies (nn/network.ts withNormSplit); absent: one batch.
   */
  normSplit?: number;
}

/** What a network plugin creates: named trainable parameters and a forward pass. */
export interface Network {
  /** Parameters by name, e.g. 'dense0/w'. Names are stable: checkpoints use them. */
  params: Map<string, tfc.Variable>;
  /**
   * Non-trainable state by name (batch normalisation's running averages, 'bn0/mean',
   * 'bn0/var'): checkpointed and fed to compiled graphs like the parameters, but never
   * given gradients, never touched by the optimizer or weight decay. The network updates
   * them itself with `v.assign(...)` while `phase.training` (the compiled step picks the
   * new values up as outputs). Absent: none.
   */
  buffers?: Map<string, tfc.Variable>;
  apply(x: tfc.Tensor2D): tfc.Tensor2D;
  /**
   * The network as a hidden part and a last dense layer without activation:
   * apply(x) = hidden(x)·w + b, with w [H, outDim] and b [outDim]. A likelihood that scores
   * thousands of rows against one x reads the output through it (the importance weights of
   * the iwae evaluator, models/importance.ts). Absent: the network does not end that way.
   */
  affineHead?(): { hidden(x: tfc.Tensor2D): tfc.Tensor2D; w: tfc.Tensor2D; b: tfc.Tensor1D };
  /**
   * The network as a first product and the rest: apply(x) = rest(x·w), w [inDim, H] (the
   * first layer's weights; its bias, normalisation and activation are in `rest`). A model
   * whose input rows share parts (M2's [x, onehot(y)], ADGM's [x, a, onehot(y)]: each x once
   * per class) computes x·w by parts, w's rows for x once per x and those for y as a lookup
   * (models/class-passes.ts). Absent: the network
   * does not start with a plain product of its input (conv, an input batch normalisation
   * or dropout).
   */
  affineInput?(): { w: tfc.Tensor2D; rest(xw: tfc.Tensor2D): tfc.Tensor2D };
  /**
   * The same forward pass as TensorFlow.js Layers on `input` ([B, inDim] symbolic), with
   * the current parameter values copied in: what `elbo export --format tfjs` writes
   * (export/tfjs.ts). `tfl` is the @tensorflow/tfjs package. Absent: the network cannot
   * be exported.
   */
  layers?(tfl: typeof tfjs, input: tfjs.SymbolicTensor): tfjs.SymbolicTensor;
}

/**
 * A network's sizes (NetworkContext.shape): it reads rows of `inDim` numbers and emits rows
 * of `outDim`. Rows are always flat; `inShape`/`outShape` say how to read them as images.
 */
export interface NetworkShape {
  inDim: number;
  outDim: number;
  /**
   * Shape of one input row as an image ([h, w, c], h·w·c = inDim): a model gives its
   * encoder the data set's `shape` here. Networks that see pixels as a grid (conv) need
   * it and refuse to be built without it; the mlp ignores it.
   */
  inShape?: number[];
  /**
   * Where the inShape image starts in an input row that holds other columns too (ADGM's
   * q(y|a,x) reads [a, x]: the image at column A). A conv network convolves the image there
   * and joins the other columns to its flattened features before its dense layer; absent,
   * the row is the image (h·w·c = inDim).
   */
  inImageAt?: number;
  /** Shape of one output row as an image: a model gives its decoder the data's `shape` (conv decoders need it). */
  outShape?: number[];
}

/** Anything with named parameters and, maybe, buffers (a network, a prior). */
export interface HasVariables {
  params?: Map<string, tfc.Variable>;
  buffers?: Map<string, tfc.Variable>;
}
