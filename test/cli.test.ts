import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { tmpDir, smallConfig, elbo, lastJson, BIN, ROOT, type RunOutput, type ValidateOutput } from './helpers';
import type { PublishedComparison } from '../src/contracts';

/** A spooled MLflow event, as far as its tags go (the run's at its start, an event's own). */
type SpooledTags = { tags?: Record<string, string>; event?: { tags?: Record<string, string> } };

test('elbo run --json: trains on generated data end to end and fills the run directory', () => {
  const dir = tmpDir();
  const cfg = smallConfig(
    dir,
    'published:\n  - {metric: test/elbo, value: -1000, pm: 1, source: "a paper, Table 2"}\n  - {metric: test/kl, value: 0, source: "another"}\n',
  );
  const runs = path.join(dir, 'runs');
  const r = elbo(['run', cfg, '--runs-dir', runs, '--json', '--set', 'train.epochs=2', '--seed', '5']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<RunOutput>(r.stdout);
  assert.deepEqual(Object.keys(out).sort(), ['evaluatedOn', 'metrics', 'published', 'runDir', 'runId', 'status']);
  assert.equal(out.status, 'FINISHED');
  assert.deepEqual(out.evaluatedOn, { checkpoint: 'last', epoch: 2 });
  // measured against published: the elbo is far above -1000 (better, higher is better), the kl above 0 (worse)
  assert.deepEqual(
    out.published!.map((p: PublishedComparison) => [p.metric, p.measured, p.value, p.mode, p.verdict]),
    [
      ['test/elbo', out.metrics['test/elbo'], -1000, 'max', 'better'],
      ['test/kl', out.metrics['test/kl'], 0, 'min', 'worse'],
    ],
  );
  assert.ok(out.metrics['test/elbo'] < 0);
  assert.ok(out.metrics['test/log_likelihood_k8'] >= out.metrics['test/elbo'] - 1, 'IWAE bound is at least about the ELBO');
  assert.equal(path.dirname(path.dirname(out.runDir)), runs);
  const rec = JSON.parse(fs.readFileSync(path.join(out.runDir, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'FINISHED');
  assert.deepEqual(rec.published, out.published);
  assert.deepEqual(rec.evaluated_on, out.evaluatedOn);
  assert.equal(rec.seed, 5);
  assert.ok(['wasm', 'cpu', 'tensorflow'].includes(rec.backend.name));
  assert.match(rec.config_sha256, /^[0-9a-f]{64}$/);
  assert.match(rec.data.sha256, /^[0-9a-f]{64}$/);
  assert.equal(rec.fingerprint.node_version, process.version);
  assert.ok(rec.fingerprint.packages['@tensorflow/tfjs-core']);
  assert.ok('commit' in rec.fingerprint.git && 'dirty' in rec.fingerprint.git);
  assert.ok(rec.start_time && rec.end_time && rec.duration_s > 0);
  const resolved = fs.readFileSync(path.join(out.runDir, 'config.yaml'), 'utf8');
  assert.match(resolved, /seed: 5/);
  assert.match(resolved, /epochs: 2/);
  assert.match(resolved, /lr: 0\.001/, 'defaults are written out');
  const metrics = fs
    .readFileSync(path.join(out.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(metrics.filter((m) => m.epoch).length, 2);
  for (const k of ['train/loss', 'train/recon', 'train/kl', 'val/elbo', 'train/samples_per_sec'])
    assert.ok(Number.isFinite(metrics[0][k]), k);
  const png = fs.readFileSync(path.join(out.runDir, 'artifacts', 'reconstructions.png'));
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.ok(fs.existsSync(path.join(out.runDir, 'checkpoints', 'epoch-0002', 'weights.bin')));
  // the progress went to stderr, one line per epoch off a terminal
  assert.match(r.stderr, /epoch 1\/2 .*samples\/s/);

  // without --json: the end of the run says where the test metrics come from and prints measured against published
  const h = elbo(['run', cfg, '--runs-dir', runs, '--set', 'train.epochs=2', '--seed', '5', '--set', 'train.select={metric: val/elbo}']);
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /^test metrics of the best checkpoint: epoch 2 \(val\/elbo -\d+\.\d{4}, max\)$/m);
  assert.match(
    h.stdout,
    /^measured against published \(best checkpoint, epoch 2\):\n {2}metric +measured +published +verdict +source\n {2}test\/elbo +-\d+\.\d{4} +-1000 ± 1 +better +a paper, Table 2\n {2}test\/kl +\d+\.\d{4} +0 +worse +another$/m,
  );
});

test('bad input exits non-zero with one line and no stack trace', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const cases: [string[], RegExp][] = [
    [['run', cfg, '--runs-dir', runs, '--set', 'train.epochs=0'], /small\.yaml|--set train\.epochs=0: train\.epochs must be >= 1/],
    [['run', cfg, '--runs-dir', runs, '--backend', 'gpu'], /--backend: unknown backend 'gpu' \(allowed: auto, tensorflow, wasm, cpu\)/],
    [['run', cfg, '--runs-dir', runs, '--bogus'], /Nonexistent flag/],
    // oclif's parse errors, its several lines said as one: what the flag got and what it wants
    [['run', cfg, '--runs-dir', runs, '--seed', 'abc'], /^run: --seed: expected an integer but received: abc; see 'elbo run --help'\n$/],
    [['run', cfg, '--seed=-3'], /^run: --seed: expected an integer greater than or equal to 0 but received: -3; see/],
    [
      ['evaluate'],
      /^evaluate: Missing 1 required arg: run: A run directory \(runs\/<experiment>\/<runId>\); see 'elbo evaluate --help'\n$/,
    ],
    // the run directory taken as a second value of --set: said how to give it
    [['evaluate', '--set', 'a=b', dir], /^evaluate: Missing 1 required arg: run: .* \(give the arguments before --set, or after --\); see/],
    [['evaluate', '-s', 'a=b', dir], /^evaluate: Missing 1 required arg: run: .* \(give the arguments before -s, or after --\); see/],
    // a topic's command is named as typed (oclif's id is runs:show)
    [['runs', 'show'], /^runs show: Missing 1 required arg: run: .*; see 'elbo runs show --help'\n$/],
    [['run', path.join(dir, 'missing.yaml')], /missing\.yaml: config file not found/],
    [['run', cfg, '--runs-dir', runs, '--set', 'data.train_images=nowhere.idx'], /nowhere\.idx: data file not found/],
  ];
  for (const [args, pattern] of cases) {
    const r = elbo(args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  }
  // a corrupt data file names the file and the fix
  fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), Buffer.from([0, 0, 8, 3, 0, 0, 0, 9]));
  const corrupt = elbo(['run', cfg, '--runs-dir', runs]);
  assert.equal(corrupt.status, 1);
  assert.match(corrupt.stderr, /train-images-idx3-ubyte: IDX header is truncated/);
});

test('error lines stay one line: control characters escaped, a 100,000-character value shortened with its length, --json whole through a pipe', () => {
  const long = 'x'.repeat(100_000);
  const j = elbo(['validate', 'configs/quickstart.yaml', '--json', '--set', `experiment=${long}`]);
  assert.equal(j.status, 1);
  const out = JSON.parse(j.stdout); // valid JSON: nothing cut
  assert.equal(out.ok, false);
  assert.match(out.problems[0].where, /^--set experiment=x{100}x*… \(100,011 characters\)$/);
  const t = elbo(['validate', 'configs/quickstart.yaml', '--set', `experiment=${long}`]);
  assert.equal(t.status, 1);
  assert.equal(t.stderr.trim().split('\n').length, 1);
  assert.ok(t.stderr.length < 1000, `${t.stderr.length} bytes`);
  // a newline and a terminal escape in a value: shown escaped, on one line
  const e = elbo(['validate', 'configs/quickstart.yaml', '--set', 'experiment=a\nb\x1b[31m']);
  assert.equal(e.status, 1);
  assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
  assert.ok(!e.stderr.includes('\x1b'), 'no raw ESC reaches the terminal');
  assert.match(e.stderr, /experiment=a\\nb\\x1b\[31m/);
});

test('Ctrl-C: the run is recorded KILLED (exit 130), and --resume finishes it', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir, '');
  const runs = path.join(dir, 'runs');
  const child = spawn(process.execPath, [BIN, 'run', cfg, '--runs-dir', runs, '--json', '--set', 'train.epochs=200'], {
    cwd: ROOT,
    env: { ...process.env, CI: 'true' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // interrupt once the first epoch is checkpointed
  const code: number | null = await new Promise((resolve) => {
    const timer = setInterval(() => {
      if (/epoch 1\/200/.test(stderr)) {
        clearInterval(timer);
        child.kill('SIGINT');
      }
    }, 50);
    child.on('exit', (c) => {
      clearInterval(timer);
      resolve(c);
    });
  });
  assert.equal(code, 130, stderr);
  const [exp] = fs.readdirSync(runs);
  const [runId] = fs.readdirSync(path.join(runs, exp));
  const runDir = path.join(runs, exp, runId);
  const rec = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'KILLED');
  assert.ok(rec.epochs_completed >= 1);
  const ckpts = fs.readdirSync(path.join(runDir, 'checkpoints')).filter((n) => /^epoch-\d+$/.test(n));
  assert.ok(ckpts.length >= 1);
  // resume only the remaining epochs: shorten the plan through the recorded config
  const configFile = path.join(runDir, 'config.yaml');
  fs.writeFileSync(configFile, fs.readFileSync(configFile, 'utf8').replace('epochs: 200', `epochs: ${rec.epochs_completed + 1}`));
  const resumed = elbo(['run', '--resume', runDir, '--json']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(lastJson<RunOutput>(resumed.stdout).status, 'FINISHED');
  assert.match(resumed.stderr, new RegExp(`resuming .* from epoch ${rec.epochs_completed}`));
});

test('start-up: --help, validate, plugins and schema do not load TensorFlow; the oclif manifest lists every command', () => {
  const dir = tmpDir();
  const probe = path.join(dir, 'probe.js');
  // records every module path under @tensorflow (or any tfjs package) the CLI loads
  fs.writeFileSync(
    probe,
    `const Module = require('module'); const seen = new Set(); const load = Module._load;
Module._load = function (req, parent, isMain) {
  try { const f = Module._resolveFilename(req, parent, isMain); if (/@tensorflow|tfjs/.test(f)) seen.add(f); } catch {}
  return load.apply(this, arguments);
};
process.on('exit', () => require('fs').writeFileSync(process.env.PROBE_OUT, JSON.stringify([...seen])));\n`,
  );
  const cases = [
    ['--help'],
    ['validate', 'configs/quickstart.yaml'],
    ['validate', 'configs/mnist/m2.yaml', '--json'],
    ['plugins'],
    ['schema'],
    ['run', '--help'],
    ['run', 'configs/quickstart.yaml', '--print-config'],
  ];
  for (const args of cases) {
    const out = path.join(dir, 'loaded.json');
    const r = elbo(args, { env: { NODE_OPTIONS: `--require ${probe}`, PROBE_OUT: out } });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), [], `elbo ${args.join(' ')} loads TensorFlow`);
  }
  // the probe itself works: a run's backend does load it
  const out = path.join(dir, 'loaded.json');
  const cfg = smallConfig(dir);
  const r = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--set', 'train.epochs=1', '--set', 'eval=[{kind: elbo}]', '-q'], {
    env: { NODE_OPTIONS: `--require ${probe}`, PROBE_OUT: out },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(JSON.parse(fs.readFileSync(out, 'utf8')).some((f: string) => f.includes('tfjs-core')));

  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8'));
  // command ids: file paths under commands/, topics joined by ':' (runs/list.js → runs:list;
  // a topic's index.js is the topic's own command: runs/index.js → runs)
  const root = path.join(ROOT, 'dist', 'src', 'cli', 'commands');
  const commands = (fs.readdirSync(root, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.js'))
    .map((f) =>
      f
        .replace(/\.js$/, '')
        .replace(/[/\\]index$/, '')
        .split(path.sep)
        .join(':'),
    );
  assert.ok(commands.includes('runs') && commands.includes('runs:list') && commands.includes('runs:show'));
  assert.deepEqual(Object.keys(manifest.commands).sort(), commands.sort());
  assert.equal(manifest.version, JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
});

test('TensorFlow C++ log lines are off unless asked for', () => {
  const { quietTensorflowLog } = require('../src/runtime/backend');
  const env: Record<string, string> = {};
  quietTensorflowLog(env);
  assert.equal(env.TF_CPP_MIN_LOG_LEVEL, '2');
  const mine = { TF_CPP_MIN_LOG_LEVEL: '0' };
  quietTensorflowLog(mine);
  assert.equal(mine.TF_CPP_MIN_LOG_LEVEL, '0', "the user's setting is kept");
  const verbose: Record<string, string> = { ELBO_TF_LOG: '1' };
  quietTensorflowLog(verbose);
  assert.equal(verbose.TF_CPP_MIN_LOG_LEVEL, undefined);
});

test('the progress line fits the terminal: epoch, step, loss, samples/s and ETA kept at 80 columns and below', () => {
  const { formatProgressLine, Progress } = require('../src/track/progress');
  const p = {
    epoch: 12,
    epochs: 300,
    step: 391,
    steps: 469,
    terms: { loss: 123.4567, recon: 98.76543, kl: 24.69123, class: 0.123456, 'train/samples_per_sec': 5000 },
    samplesPerSec: 12345.6,
    etaSec: 3 * 3600 + 25 * 60 + 7,
  };
  const wide = formatProgressLine(p, 200);
  assert.match(
    wide,
    /^epoch 12\/300 [█░]{20} 391\/469 loss 123\.5 recon 98\.77 kl 24\.69 class 0\.1235 \| 12346 samples\/s \| ETA 3:25:07$/,
  );
  assert.ok(wide.length > 80, `the full line is ${wide.length} wide`);
  for (const cols of [100, 80, 72, 60, 50, 40]) {
    const line = formatProgressLine(p, cols);
    assert.ok(line.length <= cols - 1, `${cols}: ${line} (${line.length})`);
    assert.match(line, /12\/300/, `${cols}: epoch`);
    assert.match(line, /391\/469/, `${cols}: step`);
    assert.match(line, /123\.5/, `${cols}: loss`);
    assert.match(line, /12346/, `${cols}: samples/s`);
    assert.match(line, /3:25:07/, `${cols}: ETA`);
  }
  // other terms go first, from the last; at 80 columns the bar and the loss's name stay
  assert.match(formatProgressLine(p, 80), /^epoch 12\/300 .*391\/469 loss 123\.5 .*\| 12346 samples\/s \| ETA 3:25:07$/);
  assert.doesNotMatch(formatProgressLine(p, 80), /class/);
  // too narrow for anything: cut, never wider than the terminal
  assert.ok(formatProgressLine(p, 10).length <= 9);

  // the Progress class on a terminal of unknown width draws for 80 columns
  if (!process.env.CI) {
    let out = '';
    // a fake terminal: Progress reads isTTY, columns and write
    const stream = { isTTY: true, columns: undefined, write: (s: string) => ((out += s), true) } as never;
    new Progress(stream).update({ ...p, step: p.steps });
    const drawn = out.replace(/^\r/, '').replace(/\x1b\[K$/, '');
    assert.ok(drawn.length <= 79, drawn);
    assert.match(drawn, /ETA 3:25:07$/);
  }
});

test('elbo run --print-config prints the resolved config and trains nothing; validate --json; help examples name files that exist', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const r = elbo(['run', cfg, '--runs-dir', runs, '--set', 'train.epochs=7', '--seed', '9', '--print-config']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.existsSync(runs), false, 'no run was made');
  const YAML = require('yaml');
  const printed = YAML.parse(r.stdout);
  assert.equal(printed.seed, 9);
  assert.equal(printed.train.epochs, 7);
  assert.equal(printed.train.optimizer.lr, 0.001, 'defaults are filled in');
  assert.equal(printed.model.latent, 4);

  // validate --json: the same config's sha256 as validate computes; exit 0
  const v = elbo(['validate', cfg, '--set', 'train.epochs=7', '--set', 'seed=9', '--json']);
  assert.equal(v.status, 0, v.stderr);
  const ok = lastJson<ValidateOutput>(v.stdout);
  assert.equal(ok.ok, true);
  assert.equal(ok.kind, 'config');
  assert.match(ok.config_sha256!, /^[0-9a-f]{64}$/);
  assert.deepEqual(ok.problems, []);
  const crypto = require('crypto');
  assert.equal(
    crypto.createHash('sha256').update(r.stdout).digest('hex'),
    ok.config_sha256,
    'the printed config is the one whose sha256 is recorded',
  );

  // problems: file, line, column and message each; exit 1; nothing on stderr
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, fs.readFileSync(cfg, 'utf8').replace('latent: 4', 'latent: -4').replace('kind: vae', 'kind: vea'));
  const b = elbo(['validate', bad, '--json']);
  assert.equal(b.status, 1);
  assert.equal(b.stderr, '');
  const res = lastJson<ValidateOutput>(b.stdout);
  assert.equal(res.ok, false);
  assert.ok(res.problems.length >= 1);
  for (const p of res.problems) {
    assert.equal(p.file, bad);
    assert.ok(Number.isInteger(p.line) && Number.isInteger(p.col), JSON.stringify(p));
    assert.equal(typeof p.message, 'string');
  }
  const modelLine =
    fs
      .readFileSync(bad, 'utf8')
      .split('\n')
      .findIndex((l) => l.includes('kind: vea')) + 1;
  assert.ok(
    res.problems.some((p) => /unknown model 'vea'/.test(p.message) && p.line === modelLine),
    JSON.stringify(res.problems),
  );
  const flagProblem = lastJson<ValidateOutput>(elbo(['validate', cfg, '--set', 'train.epochs=0', '--json']).stdout).problems[0];
  assert.deepEqual([flagProblem.where, flagProblem.file, flagProblem.line], ['--set train.epochs=0', null, null]);

  // every file an example in a command's --help names exists
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8'));
  for (const [id, c] of Object.entries<{ examples?: unknown[] }>(manifest.commands)) {
    for (const ex of c.examples ?? []) {
      for (const f of String(ex).match(/\bconfigs\/\S+\.ya?ml\b/g) ?? [])
        assert.ok(fs.existsSync(path.join(ROOT, f)), `elbo ${id} --help names ${f}, which does not exist`);
    }
  }
});

test('elbo run --tag K=V --note TEXT: recorded in run.json and spooled for MLflow as tags', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const r = elbo(
    [
      'run',
      cfg,
      '--runs-dir',
      runs,
      '--json',
      '-q',
      '--set',
      'train.epochs=1',
      '--set',
      'eval=[{kind: elbo}]',
      '--tag',
      'purpose=baseline',
      '--tag',
      'ticket=42',
      '--tag',
      'purpose=smoke test',
      '--note',
      'checking the tags',
      '--tracking-uri',
      'http://127.0.0.1:9',
    ],
    { env: { MLFLOW_HTTP_TIMEOUT_S: '1' } },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<RunOutput>(r.stdout);
  const rec = JSON.parse(fs.readFileSync(path.join(out.runDir, 'run.json'), 'utf8'));
  assert.deepEqual(rec.tags, { purpose: 'smoke test', ticket: '42' }, 'the last of a key wins');
  assert.equal(rec.note, 'checking the tags');
  // the MLflow events (spooled: no server listens there) carry them as tags
  const events = fs
    .readFileSync(path.join(out.runDir, 'mlflow', 'spool.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const tags = Object.assign({}, ...events.map((e: SpooledTags) => e.tags ?? e.event?.tags ?? {}));
  assert.equal(tags.purpose, 'smoke test', JSON.stringify(events[0]).slice(0, 400));
  assert.equal(tags.ticket, '42');
  assert.equal(tags['elbo.note'], 'checking the tags');
  assert.match(tags['mlflow.note.content'], /checking the tags/);

  for (const [flag, pattern] of [
    ['novalue', /--tag novalue: a tag is KEY=VALUE/],
    ['elbo.seed=3', /reserved/],
    ['a*b=1', /may hold only/],
  ] as const) {
    const b = elbo(['run', cfg, '--runs-dir', runs, '--tag', flag]);
    assert.equal(b.status, 1, flag);
    assert.match(b.stderr, pattern);
  }
});

test('shell completion (oclif autocomplete): bash completes commands, topics and flags', () => {
  const cache = tmpDir('elbo-completion-');
  const env = { XDG_CACHE_HOME: cache };
  const r = elbo(['autocomplete', '--refresh-cache'], { env });
  assert.equal(r.status, 0, r.stderr);
  const fn = path.join(cache, 'elbo', 'autocomplete', 'functions', 'bash', 'elbo.bash');
  assert.ok(fs.existsSync(fn), 'the bash completion function is written');
  // what bash's programmable completion offers for `elbo WORDS<TAB>`
  const complete = (line: string): string[] => {
    const script = `source ${JSON.stringify(fn)}; COMP_LINE=${JSON.stringify(line)}; read -ra COMP_WORDS <<< "$COMP_LINE"; [[ "$COMP_LINE" == *' ' ]] && COMP_WORDS+=(''); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMP_POINT=\${#COMP_LINE}; _elbo_autocomplete; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const b = require('child_process').spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    return [...new Set(b.stdout.trim().split('\n') as string[])].sort();
  };
  assert.deepEqual(complete('elbo ru'), ['run', 'runs']);
  assert.deepEqual(complete('elbo runs '), ['list', 'show']);
  assert.deepEqual(complete('elbo sweep --t'), ['--tag', '--tracking-uri']);
  assert.deepEqual(complete('elbo runs list --st'), ['--status']);
});

test('a mistyped command (oclif not-found): did you mean, asked in a terminal; exit 127 with where to look', () => {
  // in a terminal (script(1) gives the command a pseudo-terminal) it asks; answered "n"
  const tty = require('child_process').spawnSync(
    'script',
    ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} sweeep`, '/dev/null'],
    { input: 'n\n', encoding: 'utf8', timeout: 60_000 },
  );
  const text = tty.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  assert.match(text, /sweeep is not a elbo command/);
  assert.match(text, /Did you mean sweep\?/);
  assert.equal(tty.status, 127, text);
  // without a terminal it says so and exits 127
  const r = elbo(['runz', 'list']);
  assert.equal(r.status, 127);
  const plain = r.stderr.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  assert.match(plain, /runz list is not a elbo command/);
  assert.match(plain, /Run elbo help for a list of available commands/);
});

test('elbo sweep --tag K=V --note TEXT: checked as for run, and written into the SLURM script (the cells get them: the MLflow sweep test)', () => {
  const dir = tmpDir();
  smallConfig(dir);
  const sweep = path.join(dir, 'grid.yaml');
  fs.writeFileSync(sweep, 'base: small.yaml\nset: {train.epochs: 1}\nsweep:\n  grid:\n    model.latent: [2, 4]\n');
  const runs = path.join(dir, 'runs');
  const bad = elbo(['sweep', sweep, '--runs-dir', runs, '--tag', 'mlflow.x=1']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^--tag mlflow\.x=1: tag keys starting with 'mlflow\.' are reserved/);
  const slurm = elbo(['sweep', sweep, '--runs-dir', runs, '--emit', 'slurm', '--tag', "who=o'brien", '--note', 'a grid']);
  assert.equal(slurm.status, 0, slurm.stderr);
  const script = fs.readFileSync(slurm.stdout.trim(), 'utf8');
  // every task's srun step carries them, quoted for bash
  assert.match(script, / '--tag' 'who=o'\\''brien' '--note' 'a grid' &\n/);
});

test('elbo plugins says which options take a schedule: loss weights and learning rates read number|schedule', () => {
  const r = elbo(['plugins', 'optimizer']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /adam[\s\S]*\n\s+lr\s+number\|schedule = 0\.001 /);
  const s = elbo(['plugins', 'schedule']);
  assert.match(s.stdout, /\n\s+cosine\s+Cosine annealing/);
  assert.match(s.stdout, /\n\s+piecewise\s+Constant stages/);
});
