import { Args, Flags } from '@oclif/core';
import * as path from 'path';
import { BaseCommand } from '../base';

const OUTPUT = { sigmoid: 'Bernoulli mean', identity: 'output', 'gaussian-mean': 'μ' };

export default class Export extends BaseCommand {
  static summary =
    "Write a finished run's encoder and decoder as TensorFlow.js models, with a model card and a page that runs them in the browser";
  static description =
    "tfjs: OUT/encoder and OUT/decoder as Layers models (model.json + weights.bin, read by tf.loadLayersModel), test images, card.json (config, data sha256, metrics, published numbers) and index.html, which samples, reconstructs and interpolates in the browser; open it with `elbo serve OUT`. The models are checked against elbo's own decode and reconstruct before anything is written. Models: vae, m1, iwae, gvae and m2 with the gaussian or spike-slab prior and mlp or conv networks.";
  static examples = [
    '<%= config.bin %> export runs/quickstart --format tfjs',
    '<%= config.bin %> export runs/quickstart/20261122-101500-a1b2c3 --format tfjs --out web-model --images 32',
  ];
  static args = {
    run: Args.string({ description: 'A finished run directory, or a directory of runs (its latest finished run)', required: true }),
  };
  static flags = {
    format: Flags.string({ description: 'Export format', options: ['tfjs'], default: 'tfjs' }),
    out: Flags.string({ char: 'o', description: 'Output directory (default: RUN_DIR/export/tfjs)' }),
    images: Flags.integer({ description: 'Test images shipped for reconstructions', default: 16 }),
    backend: Flags.string({ description: "Backend for elbo's side of the check (default: auto)" }),
    json: Flags.boolean({ description: 'Print the model card as JSON on the last stdout line', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Export);
    const { exportTfjs } = await import('../../export/tfjs');
    const { dir, card } = await exportTfjs(args.run, { out: flags.out, images: flags.images, backend: flags.backend });
    if (flags.json) {
      process.stdout.write(JSON.stringify({ dir, ...card }) + '\n');
      return;
    }
    const rel = path.relative(process.cwd(), dir) || '.';
    const m = card.model;
    const y = m.classes ? ` + onehot(y) [${m.classes}]` : '';
    process.stdout.write(
      [
        `exported run ${card.run.run_id} (${m.kind}, K = ${m.latent}, data ${m.shape.join('×')})`,
        `to ${rel}/`,
        `  encoder/model.json  x [${m.dim}]${y} → posterior mean [${m.latent}]`,
        `  decoder/model.json  z [${m.latent}]${y} → ${OUTPUT[m.output]} [${m.dim}]`,
        ...(m.classes ? [`  classifier/model.json  x [${m.dim}] → q(y|x) [${m.classes}]`] : []),
        `  card.json, ${card.images.count} test images, index.html`,
        `checked against elbo (${card.check.backend}): max |Δ| decode ${card.check.decode_max_abs_diff.toExponential(1)}, reconstruct ${card.check.reconstruct_max_abs_diff.toExponential(1)}`,
        `open it: elbo serve ${rel}`,
      ].join('\n') + '\n',
    );
  }
}
