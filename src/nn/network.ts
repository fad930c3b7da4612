import type * as tfc from '@tensorflow/tfjs-core';

/** What a network plugin creates: named trainable parameters and a forward pass. */
export interface Network {
  /** Parameters by name, e.g. 'dense0/w'. Names are stable: checkpoints use them. */
  params: Map<string, tfc.Variable>;
  apply(x: tfc.Tensor2D): tfc.Tensor2D;
}

/** The extra context a network's `create` receives. */
export interface NetworkShape {
  inDim: number;
  outDim: number;
  /** Shape of one input example when it is an image ([h, w, c]); conv networks need it. */
  inShape?: number[];
  /** Shape of one output example when it is an image; conv decoders need it. */
  outShape?: number[];
}
