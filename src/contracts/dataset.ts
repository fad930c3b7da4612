/** One split of a data set: n examples of `dim` values in [0, 1], and labels if known. */
export interface Split {
  x: Float32Array;
  y: Int32Array | null;
  n: number;
}

/** What a dataset plugin's `create` resolves to. */
export interface DataSet {
  name: string;
  /** Shape of one example, e.g. [28, 28, 1]. */
  shape: number[];
  dim: number;
  /** Number of classes (0 when unlabelled). */
  classes: number;
  train: Split;
  val: Split | null;
  test: Split;
  /** sha256 over the raw data the set was built from (files, or generator parameters). */
  sha256: string;
  /** Where it came from, for the run record. */
  source: string;
  /**
   * 'dynamic': training batches are re-binarised every draw (eval splits were binarised
   * once); 'training': the same draws, the eval splits kept grey; 'fixed': every split drawn
   * once; 'none': grey everywhere.
   */
  binarize: Binarize;
  /**
   * Rows of `train` whose labels a model may see (a class-balanced subset drawn with the
   * run seed when `labelled: N` is set); null: every training label is known.
   */
  labelled: Int32Array | null;
}

export type Binarize = 'none' | 'dynamic' | 'training' | 'fixed';
