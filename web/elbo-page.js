// The page of an `elbo export --format tfjs` (src/export/tfjs.ts writes the files it reads):
// loads the encoder and decoder with TensorFlow.js (tf.min.js, shipped next to it), then
// samples from the prior, reconstructs the shipped test images and interpolates between two
// of them, all in the browser. Plain script, no build step: it must open from any static
// server, offline.
//
// Query parameters: backend=cpu|webgl|wasm (default: what tfjs picks), seed=N (prior
// draws), dump (write every number the page computed into <pre id="dump"> as JSON: what
// elbo's browser test compares with elbo's own decode).
/* global tf */
(function () {
  'use strict';

  /** card.json, the two Layers models and the test images of the export at `base` (a URL ending in /). */
  async function loadExport(base) {
    const get = async (file) => {
      const r = await fetch(base + file);
      if (!r.ok) throw new Error(`${file}: HTTP ${r.status}`);
      return r;
    };
    const card = await (await get('card.json')).json();
    if (card.format !== 'elbo-tfjs') throw new Error(`card.json: format ${card.format}, expected elbo-tfjs`);
    const [encoder, decoder, classifier, buf] = await Promise.all([
      tf.loadLayersModel(base + card.files.encoder),
      tf.loadLayersModel(base + card.files.decoder),
      card.files.classifier ? tf.loadLayersModel(base + card.files.classifier) : null,
      get(card.files.images).then((r) => r.arrayBuffer()),
    ]);
    const images = new Float32Array(buf);
    if (images.length !== card.images.count * card.model.dim)
      throw new Error(`${card.files.images}: ${images.length} numbers, expected ${card.images.count} × ${card.model.dim}`);
    return { card, encoder, decoder, classifier, images };
  }

  /**
   * Class-conditional models (card.model.classes = C, M2) read onehot(y) after x or z: rows
   * of `values` [n·dim] with onehot(ys[i]) appended. Other models: `values` as they are.
   */
  function withClasses(ex, values, n, ys) {
    const C = ex.card.model.classes;
    if (!C) return values;
    const dim = values.length / n;
    const out = new Float32Array(n * (dim + C));
    for (let i = 0; i < n; i++) {
      out.set(values.subarray(i * dim, (i + 1) * dim), i * (dim + C));
      out[i * (dim + C) + dim + ys[i]] = 1;
    }
    return out;
  }

  /** The most likely class under q(y|x) of each of n images [n·D] (class-conditional models). */
  function classify(ex, x, n) {
    const C = ex.card.model.classes;
    const q = predict(ex.classifier, x, n);
    return Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let c = 1; c < C; c++) if (q[i * C + c] > q[i * C + best]) best = c;
      return best;
    });
  }

  /**
   * n draws z ~ p(z), [n·K] row-major, from the integer `seed`: the same numbers in every
   * browser (mulberry32 and Box–Muller here; tf.randomNormal draws afresh for seed 0).
   * normal: N(0, I); spike-slab: z_k = s_k·n_k, s_k ~ Bernoulli(alpha), n_k ~ N(0, 1).
   */
  function samplePrior(ex, n, seed) {
    const K = ex.card.model.latent;
    const prior = ex.card.model.prior;
    if (prior.kind !== 'normal' && prior.kind !== 'spike-slab')
      throw new Error(`prior ${prior.kind}: this page draws from normal and spike-slab priors only`);
    let a = seed >>> 0;
    const uniform = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const z = new Float32Array(n * K);
    for (let i = 0; i < z.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - uniform()));
      const phi = 2 * Math.PI * uniform();
      z[i] = r * Math.cos(phi);
      if (i + 1 < z.length) z[i + 1] = r * Math.sin(phi);
    }
    if (prior.kind === 'spike-slab') for (let i = 0; i < z.length; i++) if (uniform() >= prior.alpha) z[i] = 0;
    return z;
  }

  /** Run a Layers model on n rows of `values`. */
  function predict(model, values, n) {
    return tf.tidy(() => model.predict(tf.tensor2d(values, [n, values.length / n])).dataSync());
  }

  /**
   * z [n·K] → images [n·D]. Class-conditional models decode row i with class ys[i]
   * (default i mod C, as elbo's own decode).
   */
  function decode(ex, z, n, ys) {
    const C = ex.card.model.classes;
    return predict(ex.decoder, withClasses(ex, z, n, ys ?? Array.from({ length: n }, (_, i) => (C ? i % C : 0))), n);
  }

  /** x [n·D] → posterior means z and their decoded images (class-conditional: with the class y that q(y|x) finds most likely). */
  function reconstruct(ex, x, n) {
    const ys = ex.card.model.classes ? classify(ex, x, n) : null;
    const z = predict(ex.encoder, withClasses(ex, x, n, ys), n);
    return { z, ys, x: decode(ex, z, n, ys) };
  }

  /**
   * `steps` points on the line between the posterior means of test images a and b, decoded
   * (class-conditional: with a's most likely class for the first half, b's for the second).
   */
  function interpolate(ex, a, b, steps) {
    const D = ex.card.model.dim;
    const K = ex.card.model.latent;
    const pair = new Float32Array(2 * D);
    pair.set(ex.images.subarray(a * D, (a + 1) * D), 0);
    pair.set(ex.images.subarray(b * D, (b + 1) * D), D);
    const ends = reconstruct(ex, pair, 2);
    const z = new Float32Array(steps * K);
    for (let s = 0; s < steps; s++) {
      const t = steps === 1 ? 0 : s / (steps - 1);
      for (let k = 0; k < K; k++) z[s * K + k] = (1 - t) * ends.z[k] + t * ends.z[K + k];
    }
    const ys = ends.ys && Array.from({ length: steps }, (_, s) => ends.ys[2 * s < steps ? 0 : 1]);
    return { z, ys, x: decode(ex, z, steps, ys) };
  }

  /** A row of n images [n·D] as canvases, each scaled up `scale` times. */
  function imageRow(parent, values, n, shape, scale) {
    const [h, w, c] = shape.length === 3 ? shape : [shape[0], shape[1] ?? 1, 1];
    const row = document.createElement('div');
    row.className = 'row';
    for (let i = 0; i < n; i++) {
      const canvas = document.createElement('canvas');
      canvas.width = w;
      canvas.height = h;
      canvas.style.width = `${w * scale}px`;
      canvas.style.height = `${h * scale}px`;
      const ctx = canvas.getContext('2d');
      const img = ctx.createImageData(w, h);
      const off = i * h * w * c;
      for (let p = 0; p < h * w; p++) {
        for (let ch = 0; ch < 3; ch++) {
          const v = values[off + p * c + (c === 1 ? 0 : ch)];
          img.data[p * 4 + ch] = Math.round(255 * Math.min(1, Math.max(0, v)));
        }
        img.data[p * 4 + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      row.appendChild(canvas);
    }
    parent.appendChild(row);
    return row;
  }

  function text(tag, content, cls) {
    const e = document.createElement(tag);
    e.textContent = content;
    if (cls) e.className = cls;
    return e;
  }

  function fmt(v) {
    return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(5)) : String(v);
  }

  /** The model card: run, data, metrics and published numbers. */
  function cardSection(parent, card) {
    const table = document.createElement('table');
    const add = (k, v, link) => {
      const tr = document.createElement('tr');
      tr.appendChild(text('th', k));
      const td = text('td', v);
      if (link) {
        const a = text('a', link);
        a.href = link;
        td.append(' (', a, ')');
      }
      tr.appendChild(td);
      table.appendChild(tr);
    };
    add(
      'run',
      `${card.run.experiment} / ${card.run.run_id}, seed ${card.run.seed}, ${card.run.epochs_completed} epochs on ${card.run.backend}`,
    );
    const classes = card.model.classes
      ? `, ${card.model.classes} classes (decoder and encoder read onehot(y), q(y|x) from the classifier)`
      : '';
    add(
      'model',
      `${card.model.kind}, latent K = ${card.model.latent}, prior ${card.model.prior.kind}${card.model.prior.alpha !== undefined ? ` (alpha ${card.model.prior.alpha})` : ''}, decoder output ${card.model.output}${classes}`,
    );
    add(
      'data',
      `${card.data.name} ${card.data.shape.join('×')} (${card.data.train} train / ${card.data.val} val / ${card.data.test} test), sha256 ${card.data.sha256}`,
    );
    add('config', `sha256 ${card.run.config_sha256}`, card.files.config);
    for (const [k, v] of Object.entries(card.metrics).filter(([k]) => k.startsWith('test/'))) add(k, fmt(v));
    if (!card.published.length) add('published', 'no published number applies to this config');
    for (const p of card.published)
      add(`published ${p.metric}`, `${fmt(p.value)} (${p.source}); measured ${p.measured === null ? '—' : fmt(p.measured)}: ${p.verdict}`);
    add(
      'checked at export',
      `max |Δ| against elbo: decode ${card.check.decode_max_abs_diff.toExponential(1)}, reconstruct ${card.check.reconstruct_max_abs_diff.toExponential(1)}`,
    );
    parent.appendChild(table);
  }

  async function main() {
    const params = new URLSearchParams(location.search);
    const status = document.getElementById('status');
    if (params.get('backend')) await tf.setBackend(params.get('backend'));
    await tf.ready();
    const ex = await loadExport(new URL('.', location.href).href);
    const { card, images } = ex;
    const shape = card.model.shape;
    const scale = Math.max(1, Math.round(56 / shape[0]));
    document.getElementById('title').textContent = document.title = `${card.run.experiment}: ${card.model.kind} on ${card.data.name}`;
    const n = Math.min(8, card.images.count);
    const dump = { backend: tf.getBackend() };

    // samples from the prior: a new seed per click
    let seed = Number(params.get('seed') ?? card.run.seed);
    const samples = document.getElementById('samples');
    const drawSamples = () => {
      const z = samplePrior(ex, 16, seed);
      const x = decode(ex, z, 16);
      samples.replaceChildren(
        text('p', `seed ${seed}${card.model.classes ? `; sample i has class i mod ${card.model.classes}` : ''}`, 'note'),
      );
      imageRow(samples, x.subarray(0, 8 * card.model.dim), 8, shape, scale);
      imageRow(samples, x.subarray(8 * card.model.dim), 8, shape, scale);
      dump.samples = { seed, n: 16, z: Array.from(z), x: Array.from(x) };
    };
    drawSamples();
    document.getElementById('resample').onclick = () => {
      seed += 1;
      drawSamples();
    };

    // reconstructions of the shipped test images
    const recon = document.getElementById('reconstructions');
    const x = images.subarray(0, n * card.model.dim);
    const r = reconstruct(ex, x, n);
    recon.appendChild(text('p', 'test images', 'note'));
    imageRow(recon, x, n, shape, scale);
    recon.appendChild(text('p', `decoded posterior means${r.ys ? ` (with the classes q(y|x) picks: ${r.ys.join(' ')})` : ''}`, 'note'));
    imageRow(recon, r.x, n, shape, scale);
    dump.reconstructions = { n, x: Array.from(x), ys: r.ys, xhat: Array.from(r.x) };

    // interpolation between two test images, chosen in the selects
    const selA = document.getElementById('a');
    const selB = document.getElementById('b');
    for (let i = 0; i < card.images.count; i++) {
      const label = card.images.labels ? `test image ${i} (class ${card.images.labels[i]})` : `test image ${i}`;
      selA.appendChild(new Option(label, String(i)));
      selB.appendChild(new Option(label, String(i)));
    }
    selB.value = String(Math.min(1, card.images.count - 1));
    const interp = document.getElementById('interpolation-row');
    const drawInterpolation = () => {
      const a = Number(selA.value);
      const b = Number(selB.value);
      const steps = 10;
      const it = interpolate(ex, a, b, steps);
      interp.replaceChildren();
      imageRow(interp, it.x, steps, shape, scale);
      dump.interpolation = { a, b, steps, z: Array.from(it.z), ys: it.ys, x: Array.from(it.x) };
    };
    selA.onchange = drawInterpolation;
    selB.onchange = drawInterpolation;
    drawInterpolation();

    cardSection(document.getElementById('card'), card);
    status.textContent = `TensorFlow.js ${tf.version.tfjs} on ${tf.getBackend()}; models from ${card.files.encoder} and ${card.files.decoder}`;
    if (params.has('dump')) document.getElementById('dump').textContent = JSON.stringify(dump);
    document.body.dataset.state = 'ready';
  }

  window.elboPage = { loadExport, samplePrior, classify, decode, reconstruct, interpolate };
  window.addEventListener('load', () =>
    main().catch((e) => {
      const status = document.getElementById('status');
      status.textContent = `error: ${e.message}${location.protocol === 'file:' ? ' (this page needs an HTTP server: elbo serve DIR)' : ''}`;
      status.className = 'error';
      document.body.dataset.state = 'error';
      console.error(e);
    }),
  );
})();
