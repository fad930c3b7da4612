/**
 * MLflow tracking against a real `mlflow server` (see mlflow-server.ts): what arrives, and
 * that nothing is lost or doubled when the server is slow, failing, or away.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { parse as parseYaml } from 'yaml';
import { tmpDir, smallConfig, lastJson, BIN, ROOT, type RunOutput, type ShownRun, type SweepOutput, type SyncOutput } from './helpers';
import {
  ensureMlflow,
  MlflowServer,
  FaultProxy,
  api,
  runsOf,
  history,
  artifactList,
  artifactBytes,
  readBackWithPython,
  PythonReadBack,
  MLFLOW_VERSION,
  type ServerRun,
  type ServerModel,
} from './mlflow-server';
import type { UserError } from '../src/errors';
import type { RunRecord } from '../src/contracts';
import type { ReproReport } from '../src/sweep/reproduce';
import { MlflowClient, type MlflowExperiment, type MlflowMetric, type MlflowRun } from '../src/mlflow/client';
import { getOrCreateExperiment, Replayer } from '../src/mlflow/replay';
import { Spool, type DeferredEvent, type SpoolState } from '../src/mlflow/spool';
import { syncRun, configParams } from '../src/mlflow/tracker';
import { artifactLocation, ArtifactStore, ArtifactsUnreachable } from '../src/mlflow/artifacts';
import { runExperiment } from '../src/experiment';
import { Chromium } from './chromium';

/** With the artifact proxy (mlflow server's default). */
let server: MlflowServer;
/** Without it, as deployed on clusters: --default-artifact-root SHARED_ROOT --no-serve-artifacts. */
let shared: MlflowServer;
let sharedRoot: string;
let work: string;

before(async () => {
  // in-process runs must not see MLflow settings of the developer's shell
  for (const k of [
    'MLFLOW_TRACKING_URI',
    'MLFLOW_TRACKING_TOKEN',
    'MLFLOW_TRACKING_USERNAME',
    'MLFLOW_TRACKING_PASSWORD',
    'MLFLOW_EXPERIMENT_NAME',
    'ELBO_MLFLOW_PARENT_RUN_ID',
  ])
    delete process.env[k];
  const inst = await ensureMlflow((m) => process.stderr.write(`# ${m}\n`));
  work = tmpDir('elbo-mlflow-');
  const sharedWork = tmpDir('elbo-mlflow-shared-');
  sharedRoot = path.join(sharedWork, 'mlruns');
  fs.mkdirSync(sharedRoot);
  [server, shared] = await Promise.all([MlflowServer.start(work), MlflowServer.start(sharedWork, { artifactRoot: sharedRoot })]);
  process.stderr.write(
    `# mlflow ${MLFLOW_VERSION}${inst.installed ? ` installed in ${inst.seconds.toFixed(0)} s,` : ''} servers ready in ${server.startSeconds[0].toFixed(1)} s (artifact proxy) and ${shared.startSeconds[0].toFixed(1)} s (shared artifact root)\n`,
  );
});

after(async () => {
  await Promise.all([server?.stop(), shared?.stop()]);
});

/** `elbo ...` without blocking this process (the proxy lives here). */
function elboAsync(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, CI: 'true', ...env })) if (v !== undefined) childEnv[k] = v;
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The JSON object on the last line of stdout, or a failure that shows stderr. */
function jsonOf<T>(r: { status: number | null; stdout: string; stderr: string }): T {
  try {
    return lastJson<T>(r.stdout);
  } catch {
    assert.fail(`no JSON on stdout (exit ${r.status}); stdout: ${JSON.stringify(r.stdout)}; stderr:\n${r.stderr}`);
  }
}

/** No MLflow variables from the developer's shell leak into a test. */
const CLEAN_ENV = {
  MLFLOW_TRACKING_URI: undefined,
  MLFLOW_TRACKING_TOKEN: undefined,
  MLFLOW_TRACKING_USERNAME: undefined,
  MLFLOW_TRACKING_PASSWORD: undefined,
  MLFLOW_EXPERIMENT_NAME: undefined,
};

/** A small config in its own git repository (so the run has a commit to report). */
function configInRepo(extra = ''): { dir: string; cfg: string; runs: string } {
  const dir = tmpDir('elbo-mlflow-cfg-');
  const cfg = smallConfig(dir, extra);
  const git = (...a: string[]) => spawnSync('git', a, { cwd: dir, encoding: 'utf8' });
  git('init', '-q');
  git('add', '.');
  git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-qm', 'config');
  git('checkout', '-qb', 'exp/latent');
  git('remote', 'add', 'origin', 'https://alice:not-stored@git.example.com/lab/vae-exp.git');
  return { dir, cfg, runs: path.join(dir, 'runs') };
}

/** The resolved config flattened to dotted keys, independently of the code under test. */
function flatten(v: unknown, key = '', out: Record<string, string> = {}): Record<string, string> {
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== 'object')) out[key] = JSON.stringify(v);
    else v.forEach((x, i) => flatten(x, `${key}.${i}`, out));
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) flatten(x, key ? `${key}.${k}` : k, out);
  } else out[key] = String(v);
  return out;
}

const byKey = (kv: { key: string; value: string }[] = []) => Object.fromEntries(kv.map((t) => [t.key, t.value]));

/**
 * Every metric point of metrics.jsonl is in MLflow exactly once, with its step, timestamp
 * and exact value; and MLflow has no other points of those keys.
 */
async function assertMetricsExactlyOnce(base: string, runId: string, runDir: string): Promise<number> {
  const lines = fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const keys = new Set(lines.flatMap((l) => Object.keys(l).filter((k) => k !== 'step' && k !== 'timestamp')));
  let n = 0;
  for (const key of keys) {
    const expected = lines.filter((l) => key in l).map((l) => ({ step: l.step, timestamp: l.timestamp, value: l[key] }));
    const got = (await history(base, runId, key)).sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
    assert.deepEqual(got, expected, `metric ${key}`);
    n += got.length;
  }
  return n;
}

async function assertArtifactsIdentical(base: string, run: Pick<MlflowRun, 'info'>, runDir: string, expected: string[]): Promise<void> {
  const listed = await artifactList(base, run.info.run_id);
  for (const f of expected) {
    assert.ok(listed.includes(f), `artifact ${f} is listed (got ${listed.join(', ')})`);
    const remote = await artifactBytes(base, run.info.artifact_uri, f);
    assert.ok(remote.equals(fs.readFileSync(path.join(runDir, f))), `artifact ${f} is byte-identical`);
  }
}

/**
 * The files a finished run sends as artifacts, listed from its directory: config.yaml,
 * run.json, metrics.jsonl, artifacts/* and the last checkpoint.
 */
function runArtifactFiles(runDir: string): string[] {
  const last = fs
    .readdirSync(path.join(runDir, 'checkpoints'))
    .filter((n) => /^epoch-\d+$/.test(n))
    .sort()
    .at(-1)!;
  return [
    'config.yaml',
    'run.json',
    'metrics.jsonl',
    ...fs.readdirSync(path.join(runDir, 'artifacts')).map((f) => `artifacts/${f}`),
    ...fs.readdirSync(path.join(runDir, 'checkpoints', last)).map((f) => `checkpoints/${last}/${f}`),
  ].sort();
}

/**
 * MLflow's Python client reads back every artifact of the run (exactly `files`, byte for
 * byte) and its one logged model: READY, made by this run, holding the evaluated checkpoint
 * and config.yaml byte for byte, and its MLmodel file.
 */
async function assertPythonReadBack(base: string, runId: string, runDir: string, files: string[]): Promise<PythonReadBack> {
  const dest = tmpDir('elbo-readback-');
  const back = await readBackWithPython(base, runId, dest);
  assert.deepEqual(back.run_files, files, "the artifacts MLflow has are the run's files");
  for (const f of files)
    assert.ok(fs.readFileSync(path.join(back.run_dir, f)).equals(fs.readFileSync(path.join(runDir, f))), `artifact ${f} is byte-identical`);
  assert.equal(back.models.length, 1, "one logged model, the run's output");
  const [m] = back.models;
  assert.equal(m.status, 'READY');
  assert.equal(m.source_run_id, runId);
  const ckpt = files.find((f) => f.endsWith('/weights.bin'))!.replace(/\/weights\.bin$/, '');
  const ckptFiles = files.filter((f) => f.startsWith(`${ckpt}/`)).map((f) => `checkpoint/${f.slice(ckpt.length + 1)}`);
  assert.deepEqual(m.files, ['MLmodel', ...ckptFiles, 'config.yaml'].sort());
  for (const f of ckptFiles)
    assert.ok(
      fs.readFileSync(path.join(m.dir, f)).equals(fs.readFileSync(path.join(runDir, ckpt, f.slice('checkpoint/'.length)))),
      `model file ${f}`,
    );
  assert.ok(fs.readFileSync(path.join(m.dir, 'config.yaml')).equals(fs.readFileSync(path.join(runDir, 'config.yaml'))));
  assert.match(fs.readFileSync(path.join(m.dir, 'MLmodel'), 'utf8'), /flavors:\n {2}elbo:\n/);
  return back;
}

/** Every event of the run's spool is acknowledged, none refused, none waiting. */
function assertSpoolDelivered(runDir: string): SpoolState {
  const state: SpoolState = JSON.parse(fs.readFileSync(path.join(runDir, 'mlflow', 'state.json'), 'utf8'));
  assert.equal(
    state.acked,
    fs
      .readFileSync(path.join(runDir, 'mlflow', 'spool.jsonl'), 'utf8')
      .trim()
      .split('\n').length,
  );
  assert.deepEqual(state.skipped, []);
  assert.equal(state.deferred, undefined);
  return state;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('elbo run --tracking-uri: params, every metric point, tags, status and artifacts reach MLflow', async () => {
  const { cfg, runs } = configInRepo(
    'tracking:\n  - kind: mlflow\n    experiment_name: t-full\n    log_steps: true\n    system_metrics: true\n    system_metrics_interval_s: 0.5\n',
  );
  const r = await elboAsync(
    ['run', cfg, '--runs-dir', runs, '--json', '--tracking-uri', server.url, '--set', 'train.log_every=2'],
    CLEAN_ENV,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /warning/);
  const out = jsonOf<RunOutput>(r);
  const rec = JSON.parse(fs.readFileSync(path.join(out.runDir, 'run.json'), 'utf8'));
  const found = await runsOf(server.url, 't-full');
  assert.equal(found.length, 1, 'one MLflow run per elbo run');
  const run = found[0];
  const { info, data } = run;
  assert.equal(info.status, 'FINISHED');
  assert.equal(info.run_name, rec.run_id);
  assert.equal(Number(info.start_time), Date.parse(rec.start_time));
  assert.equal(Number(info.end_time), Date.parse(rec.end_time));

  // params: the resolved config, dotted, with the backend that ran (not the config's auto)
  const config = parseYaml(fs.readFileSync(path.join(out.runDir, 'config.yaml'), 'utf8'));
  assert.equal(config.backend, 'auto');
  const params = byKey(data.params);
  assert.deepEqual(params, flatten({ ...config, backend: rec.backend.name }));
  assert.match(params.backend, /^(wasm|tensorflow|cpu)$/);
  assert.equal(params['model.latent'], '4');
  assert.equal(params['model.encoder.hidden'], '[32]');
  assert.equal(params['eval.1.k'], '8');
  assert.equal(params['train.optimizer.lr'], '0.001');

  // tags
  const tags = byKey(data.tags);
  assert.equal(tags['mlflow.runName'], rec.run_id);
  assert.equal(tags['mlflow.source.name'], rec.config_file);
  assert.match(rec.fingerprint.git.commit, /^[0-9a-f]{40}$/);
  assert.equal(tags['mlflow.source.git.commit'], rec.fingerprint.git.commit);
  assert.equal(tags['mlflow.source.git.branch'], 'exp/latent');
  assert.equal(tags['mlflow.source.git.repoURL'], 'https://git.example.com/lab/vae-exp.git', 'the repository, without its credentials');
  assert.equal(tags['elbo.backend_requested'], 'auto');
  assert.ok(tags['mlflow.user']);
  assert.match(tags['mlflow.note.content'], /vae.*latent 4.*idx.*FINISHED after 3\/3 epochs/s);
  assert.equal(tags['elbo.seed'], '1');
  assert.match(tags['elbo.backend'], new RegExp(`^${rec.backend.name}`));
  assert.equal(tags['elbo.config_sha256'], rec.config_sha256);
  assert.equal(tags['elbo.data_sha256'], rec.data.sha256);
  assert.equal(tags['elbo.version'], rec.fingerprint.elbo_version);

  // the data set is the run's input: name, digest (its sha256, as long as MLflow stores), source
  const inputs = run.inputs.dataset_inputs;
  assert.equal(inputs.length, 1);
  assert.deepEqual(inputs[0].tags, [{ key: 'mlflow.data.context', value: 'training' }]);
  assert.equal(inputs[0].dataset.name, rec.data.name);
  assert.equal(inputs[0].dataset.digest, rec.data.sha256.slice(0, 36));
  assert.deepEqual(JSON.parse(inputs[0].dataset.source), { uri: rec.data.source });
  assert.deepEqual(JSON.parse(inputs[0].dataset.profile!), {
    sha256: rec.data.sha256,
    train: rec.data.train,
    val: rec.data.val,
    test: rec.data.test,
  });

  // the model: an MLflow 3 logged model, READY, the run's output at its last epoch, with the
  // checkpoint, config and MLmodel as its files and the run's test metrics
  assert.deepEqual(
    run.outputs.model_outputs.map((o) => Number(o.step)),
    [3],
  );
  const model = (await api<{ model: ServerModel }>(server.url, 'GET', `logged-models/${run.outputs.model_outputs[0].model_id}`)).model;
  assert.equal(model.info.status, 'LOGGED_MODEL_READY');
  assert.equal(model.info.source_run_id, info.run_id);
  assert.equal(model.info.name, `${rec.experiment}-vae`, 'named by experiment and model kind');
  assert.equal(byKey(model.data.params).latent, '4');
  const modelMetrics = Object.fromEntries(model.data.metrics.map((m) => [m.key, m.value]));
  assert.ok(Object.keys(modelMetrics).some((k) => k.startsWith('test/')));
  for (const [k, v] of Object.entries(modelMetrics)) assert.equal(v, rec.metrics[k], k);
  const modelFiles = (
    await api<{ files: { path: string }[] }>(server.url, 'GET', `logged-models/${model.info.model_id}/artifacts/directories`)
  ).files
    .map((f) => f.path)
    .sort();
  assert.deepEqual(modelFiles, ['MLmodel', 'checkpoint', 'config.yaml']);
  const weights = await fetch(
    `${server.url}/ajax-api/2.0/mlflow/logged-models/${model.info.model_id}/artifacts/files?artifact_file_path=checkpoint/weights.bin`,
  );
  assert.ok(
    Buffer.from(await weights.arrayBuffer()).equals(fs.readFileSync(path.join(out.runDir, 'checkpoints/epoch-0003/weights.bin'))),
    'the model holds the checkpoint, byte for byte',
  );
  const mlmodel = await (
    await fetch(`${server.url}/ajax-api/2.0/mlflow/logged-models/${model.info.model_id}/artifacts/files?artifact_file_path=MLmodel`)
  ).text();
  assert.match(mlmodel, /flavors:\n {2}elbo:\n/);
  // MLmodel's paths are the model's own (the checkpoint's files are under checkpoint/), the run's checkpoint beside it
  assert.match(mlmodel, /\n {4}checkpoint: checkpoint\n/);
  assert.match(mlmodel, /\n {4}source_checkpoint: checkpoints\/epoch-0003\n/);

  // system metrics: CPU and memory, sampled while it trained
  const cpu = await history(server.url, info.run_id, 'system/cpu_utilization_percentage');
  assert.ok(cpu.length >= 1, 'at least one CPU sample');
  assert.ok(cpu.every((p) => p.value >= 0 && p.value <= 100));
  const mem = await history(server.url, info.run_id, 'system/system_memory_usage_megabytes');
  assert.ok(mem.length === cpu.length && mem.every((p) => p.value > 0));

  // metrics: every epoch and the test metrics, exact; the running losses every 2 steps
  const points = await assertMetricsExactlyOnce(server.url, info.run_id, out.runDir);
  assert.ok(points >= 40, `${points} points`);
  assert.deepEqual(
    (await history(server.url, info.run_id, 'epoch')).map((p) => p.value),
    [1, 2, 3],
  );
  const stepLoss = await history(server.url, info.run_id, 'train_step/loss');
  assert.deepEqual(
    stepLoss.map((p) => p.step).sort((a, b) => a - b),
    [2, 4, 6, 7, 9, 11, 13, 14, 16, 18, 20, 21],
  );

  // artifacts, byte for byte
  await assertArtifactsIdentical(server.url, run, out.runDir, [
    'config.yaml',
    'run.json',
    'metrics.jsonl',
    'artifacts/reconstructions.png',
    'artifacts/reconstructions.svg',
    'artifacts/curves.png',
    'artifacts/curves.svg',
    'artifacts/report.html',
    'checkpoints/epoch-0003/manifest.json',
    'checkpoints/epoch-0003/weights.bin',
  ]);
  // and as MLflow's own Python client reads them, with the logged model
  const back = await assertPythonReadBack(server.url, info.run_id, out.runDir, runArtifactFiles(out.runDir));
  assert.match(back.artifact_uri, /^mlflow-artifacts:/, 'through the artifact proxy');
  // the spool is fully acknowledged
  const state = assertSpoolDelivered(out.runDir);
  assert.equal(state.run_id, info.run_id);
  // a second sync has nothing to do
  const again = await elboAsync(['sync', out.runDir, '--json'], CLEAN_ENV);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(jsonOf<SyncOutput>(again).runs[0].status, 'up-to-date');
});

test('MLFLOW_TRACKING_URI and credentials: sent as MLflow clients send them, written nowhere', async () => {
  const proxy = await FaultProxy.start(server.url);
  try {
    const { cfg, runs } = configInRepo();
    const secretUser = 'alice-user-9f3k';
    const secretPass = 'pw-Zq81-never-store';
    const basic = await elboAsync(['run', cfg, '--runs-dir', runs, '--json', '--set', 'train.epochs=1'], {
      ...CLEAN_ENV,
      MLFLOW_TRACKING_URI: proxy.url,
      MLFLOW_EXPERIMENT_NAME: 't-creds',
      MLFLOW_TRACKING_USERNAME: secretUser,
      MLFLOW_TRACKING_PASSWORD: secretPass,
      MLFLOW_TRACKING_TOKEN: 'tok-ignored-when-basic-given',
    });
    assert.equal(basic.status, 0, basic.stderr);
    const expectBasic = 'Basic ' + Buffer.from(`${secretUser}:${secretPass}`).toString('base64');
    assert.ok(proxy.requests.length >= 5);
    for (const q of proxy.requests) assert.equal(q.headers.authorization, expectBasic, `${q.method} ${q.url}`);

    const token = 'tok-7Hh2-secret-token';
    const n = proxy.requests.length;
    const bearer = await elboAsync(['run', cfg, '--runs-dir', runs, '--json', '--set', 'train.epochs=1'], {
      ...CLEAN_ENV,
      MLFLOW_TRACKING_URI: proxy.url,
      MLFLOW_EXPERIMENT_NAME: 't-creds',
      MLFLOW_TRACKING_TOKEN: token,
    });
    assert.equal(bearer.status, 0, bearer.stderr);
    for (const q of proxy.requests.slice(n)) assert.equal(q.headers.authorization, `Bearer ${token}`);

    // nowhere: not in the run directories, the output, or anything the server holds
    const secrets = [secretUser, secretPass, token, expectBasic.slice(6)];
    const files: string[] = [];
    const walk = (d: string) =>
      fs
        .readdirSync(d, { withFileTypes: true })
        .forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : files.push(path.join(d, e.name))));
    walk(runs);
    assert.ok(files.some((f) => f.endsWith('spool.jsonl')));
    const texts = [...files.map((f) => fs.readFileSync(f, 'latin1')), basic.stdout, basic.stderr, bearer.stdout, bearer.stderr];
    for (const run of await runsOf(server.url, 't-creds')) {
      texts.push(JSON.stringify(run.data));
      for (const f of await artifactList(server.url, run.info.run_id))
        texts.push((await artifactBytes(server.url, run.info.artifact_uri, f)).toString('latin1'));
    }
    for (const t of texts) for (const s of secrets) assert.ok(!t.includes(s), `a secret leaked: ${s}`);
    // and a URI with credentials in it is refused before anything runs
    await assert.rejects(
      runExperiment({ config: cfg, runsDir: runs, progress: false, trackingUri: `http://bob:hunter2@127.0.0.1:${server.port}` }),
      (e: unknown) => {
        assert.equal(
          (e as UserError).line(),
          '--tracking-uri: the tracking URI must not carry credentials; set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD',
        );
        return true;
      },
    );
  } finally {
    await proxy.close();
  }
});

test('slow and failing server: bounded retries with back-off, then the spool; a lost answer sends nothing twice', async () => {
  const proxy = await FaultProxy.start(server.url);
  try {
    // a generous deadline: on a busy machine the server can take seconds to answer, and a
    // timeout would count as one more failure; the 503s and the lost answer are what is tested
    const { cfg, runs } = configInRepo(
      'tracking:\n  - kind: mlflow\n    experiment_name: t-faults\n    backoff_s: 0.05\n    retries: 3\n    timeout_s: 10\n',
    );
    // every third log-batch: 503 once; the first metrics batch: the server stores it but the answer is lost
    let batches = 0;
    let lostOnce = false;
    proxy.fault = ({ url, body }) => {
      if (!url.includes('log-batch')) return 'pass';
      batches++;
      if (!lostOnce && body.includes('"metrics":[{')) {
        lostOnce = true;
        return 'lose';
      }
      return batches % 3 === 0 ? '503' : 'pass';
    };
    const r = await elboAsync(['run', cfg, '--runs-dir', runs, '--json', '--tracking-uri', proxy.url], CLEAN_ENV);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /MLflow is behind/, 'retries were enough');
    const out = jsonOf<RunOutput>(r);
    const [run] = await runsOf(server.url, 't-faults');
    assert.equal(run.info.status, 'FINISHED');
    await assertMetricsExactlyOnce(server.url, run.info.run_id, out.runDir);
    assert.ok(proxy.requests.some((q) => q.fault === '503'));
    // the lost batch was checked against the server's history, not sent again
    const lost = proxy.requests.find((q) => q.fault === 'lose')!;
    const lostPoints = JSON.parse(lost.body.toString()).metrics.map((m: MlflowMetric) => `${m.key}@${m.step}@${m.timestamp}`);
    const later = proxy.requests.slice(proxy.requests.indexOf(lost) + 1).filter((q) => q.url.includes('log-batch') && q.fault === 'pass');
    // (the logged model's metrics are the run's test metrics again, carrying the model's id:
    // that is how MLflow 3 attaches metrics to a logged model, not a resend of run history;
    // on a slow machine the lost batch can hold those test points)
    for (const q of later) {
      for (const m of JSON.parse(q.body.toString()).metrics ?? []) {
        if (m.model_id) assert.ok(m.key.startsWith('test/'), `only test metrics go with the model (${m.key})`);
        else assert.ok(!lostPoints.includes(`${m.key}@${m.step}@${m.timestamp}`), `no point is sent twice (${m.key} at step ${m.step})`);
      }
    }
    // and the model's metrics go out once
    const modelPoints = later.flatMap((q) =>
      (JSON.parse(q.body.toString()).metrics ?? []).filter((m: MlflowMetric) => m.model_id).map((m: MlflowMetric) => `${m.key}@${m.step}`),
    );
    assert.equal(new Set(modelPoints).size, modelPoints.length, "the logged model's metrics are sent once");
    assert.ok(
      proxy.requests.some((q) => q.url.includes('get-history')),
      'the history was read',
    );

    // a server that does not answer at all: the run ends in bounded time, the events wait
    proxy.requests.length = 0;
    proxy.fault = () => 'hang';
    const t0 = Date.now();
    const hung = await elboAsync(
      [
        'run',
        cfg,
        '--runs-dir',
        runs,
        '--json',
        '--tracking-uri',
        proxy.url,
        '--set',
        'tracking.0.timeout_s=0.3',
        '--set',
        'tracking.0.retries=1',
        '--set',
        'tracking.0.finish_timeout_s=2',
        '--set',
        'tracking.0.experiment_name=t-hang',
      ],
      CLEAN_ENV,
    );
    const took = (Date.now() - t0) / 1000;
    assert.equal(hung.status, 0, hung.stderr);
    assert.match(hung.stderr, /warning: MLflow is behind: .*no answer within 0\.3 s/);
    assert.match(hung.stderr, /send them with: elbo sync /);
    assert.ok(took < 25, `the run took ${took} s`);
    const hungDir = jsonOf<RunOutput>(hung).runDir;
    // the server is back: sync sends everything once
    proxy.fault = () => 'pass';
    const s = await elboAsync(['sync', hungDir, '--json'], CLEAN_ENV);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(jsonOf<SyncOutput>(s).runs[0].status, 'synced');
    const [h] = await runsOf(server.url, 't-hang');
    assert.equal(h.info.status, 'FINISHED');
    await assertMetricsExactlyOnce(server.url, h.info.run_id, hungDir);
  } finally {
    await proxy.close();
  }
});

test('server down at the start: the MLflow run is created by elbo sync, with the original times; twice is once', async () => {
  const proxy = await FaultProxy.start(server.url);
  try {
    await proxy.down(); // nothing listens: connection refused
    const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-down\n    backoff_s: 0.05\n');
    const r = await elboAsync(
      ['run', cfg, '--runs-dir', runs, '--json', '--tracking-uri', proxy.url, '--set', 'train.epochs=2'],
      CLEAN_ENV,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: MLflow is behind: .*connection refused/);
    const out = jsonOf<RunOutput>(r);
    assert.equal(out.status, 'FINISHED');
    assert.equal(
      await api(server.url, 'GET', 'experiments/get-by-name', { experiment_name: 't-down' }).catch(() => null),
      null,
      'nothing reached the server',
    );

    await proxy.listen();
    const s1 = await elboAsync(['sync', out.runDir, '--json'], CLEAN_ENV);
    assert.equal(s1.status, 0, s1.stderr);
    const rep = jsonOf<SyncOutput>(s1).runs[0];
    assert.equal(rep.status, 'synced');
    assert.equal(rep.pending, 0);
    const rec = JSON.parse(fs.readFileSync(path.join(out.runDir, 'run.json'), 'utf8'));
    const [run] = await runsOf(server.url, 't-down');
    assert.equal(run.info.run_id, rep.mlflowRunId);
    assert.equal(run.info.status, 'FINISHED');
    assert.equal(Number(run.info.start_time), Date.parse(rec.start_time), 'original start time');
    assert.equal(Number(run.info.end_time), Date.parse(rec.end_time), 'original end time');
    await assertMetricsExactlyOnce(server.url, run.info.run_id, out.runDir);
    await assertArtifactsIdentical(server.url, run, out.runDir, [
      'config.yaml',
      'run.json',
      'metrics.jsonl',
      'artifacts/reconstructions.png',
      'checkpoints/epoch-0002/weights.bin',
    ]);

    // again: nothing to send
    assert.equal((await syncRun(out.runDir, { env: {} })).status, 'up-to-date');
    // a crash before the acknowledgements were saved: everything is replayed, nothing doubles
    const stateFile = path.join(out.runDir, 'mlflow', 'state.json');
    const st = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    fs.writeFileSync(stateFile, JSON.stringify({ ...st, run_id: undefined, artifact_uri: undefined, acked: 0 }));
    const s3 = await syncRun(out.runDir, { env: {} });
    assert.equal(s3.status, 'synced', s3.error);
    assert.equal(s3.mlflowRunId, run.info.run_id, 'the same MLflow run is found, not a second one');
    assert.equal((await runsOf(server.url, 't-down')).length, 1);
    await assertMetricsExactlyOnce(server.url, run.info.run_id, out.runDir);

    // a run made with MLflow off is sent in full by sync --tracking-uri
    const off = await runExperiment({
      config: cfg,
      runsDir: runs,
      progress: false,
      overrides: ['train.epochs=1', 'tracking=[]', 'experiment=t-import'],
    });
    const offDir = off.runDir;
    assert.ok(!fs.existsSync(path.join(offDir, 'mlflow')));
    await assert.rejects(syncRun(offDir, { env: {} }), /was not tracked in MLflow .*--tracking-uri/);
    const imp = await elboAsync(['sync', offDir, '--tracking-uri', server.url, '--json'], CLEAN_ENV);
    assert.equal(imp.status, 0, imp.stderr);
    const [irun] = await runsOf(server.url, 't-import');
    assert.equal(irun.info.status, 'FINISHED');
    await assertMetricsExactlyOnce(server.url, irun.info.run_id, offDir);
  } finally {
    await proxy.close();
  }
});

test('deleted experiment: a clear error (not restored), and concurrent creation gives one experiment', async () => {
  const client = new MlflowClient(server.url, { timeoutMs: 10_000 });
  const ids = await Promise.all(Array.from({ length: 6 }, () => getOrCreateExperiment(client, 't-race')));
  assert.equal(new Set(ids).size, 1);

  const id = await getOrCreateExperiment(client, 't-deleted');
  await api(server.url, 'POST', 'experiments/delete', { experiment_id: id });
  const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-deleted\n');
  const r = await elboAsync(['run', cfg, '--runs-dir', runs, '--json', '--set', 'train.epochs=1', '--tracking-uri', server.url], CLEAN_ENV);
  assert.equal(r.status, 0, 'training is not failed by the tracker');
  assert.match(r.stderr, /warning: MLflow is behind: .*experiment 't-deleted' .* is deleted .*restore it/);
  const s = await elboAsync(['sync', jsonOf<RunOutput>(r).runDir], CLEAN_ENV);
  assert.equal(s.status, 1);
  assert.match(s.stdout, /is deleted .*restore it .*still pending/);
  const exp = (await api<{ experiment: MlflowExperiment }>(server.url, 'GET', 'experiments/get-by-name', { experiment_name: 't-deleted' }))
    .experiment;
  assert.equal(exp.lifecycle_stage, 'deleted', "not restored behind the user's back");
});

test('limits: 250 params, a 7000-character value and 2500 points in one event go out in batches MLflow accepts', async () => {
  const proxy = await FaultProxy.start(server.url);
  try {
    const dir = tmpDir('elbo-mlflow-limits-');
    fs.writeFileSync(path.join(dir, 'run.json'), '{}');
    const spool = Spool.open(dir, {
      tracking_uri: proxy.url,
      experiment_name: 't-limits',
      options: { timeout_s: 10, retries: 1, backoff_s: 0.05 },
    });
    const params: [string, string][] = Array.from({ length: 250 }, (_, i) => [`p.${i}`, String(i)]);
    const long = configParams({ note: 'x'.repeat(7000), ok: 1 });
    assert.equal(long.params.find(([k]) => k === 'note')![1].length, 6000);
    assert.match(long.tags['elbo.params_truncated'], /^note \(cut to 6000 characters/);
    const metrics = Array.from({ length: 2500 }, (_, i) => ({
      key: `m${i % 5}`,
      value: i / 7,
      step: Math.floor(i / 5),
      timestamp: 1_700_000_000_000 + i,
    }));
    spool.append(
      {
        type: 'create',
        uid: 'limits-1',
        experiment_name: 't-limits',
        run_name: 'limits',
        start_time: 1_700_000_000_000,
        user: 'test',
        tags: long.tags,
      },
      { type: 'params', params: [...params, ...long.params] },
      { type: 'metrics', metrics },
      { type: 'status', status: 'FINISHED', end_time: 1_700_000_100_000 },
    );
    const client = new MlflowClient(proxy.url, { timeoutMs: 10_000 });
    const res = await new Replayer(spool, client, { retries: 1, backoffMs: 50, uncertainBelow: 0 }).flush();
    assert.equal(res.error, undefined);
    assert.equal(res.pending, 0);
    for (const q of proxy.requests.filter((q) => q.url.includes('log-batch'))) {
      const b = JSON.parse(q.body.toString());
      assert.ok(b.params.length <= 100 && b.metrics.length <= 1000 && b.params.length + b.metrics.length + b.tags.length <= 1000);
      assert.ok(q.body.length < 1_000_000);
    }
    const [run] = await runsOf(server.url, 't-limits');
    assert.equal(run.data.params.length, 252);
    assert.equal(byKey(run.data.params).note, 'x'.repeat(6000));
    assert.match(byKey(run.data.tags)['elbo.params_truncated'], /note/);
    for (let k = 0; k < 5; k++) {
      const h = await history(server.url, run.info.run_id, `m${k}`);
      assert.deepEqual(
        h.map((p) => p.value).sort((a, b) => a - b),
        metrics
          .filter((m) => m.key === `m${k}`)
          .map((m) => m.value)
          .sort((a, b) => a - b),
      );
    }
  } finally {
    await proxy.close();
  }
});

test('user errors are one line before anything runs; a non-http MLFLOW_TRACKING_URI leaves MLflow off', async () => {
  const { cfg, runs } = configInRepo();
  const cases: [string[], Record<string, string | undefined>, RegExp][] = [
    [
      ['run', cfg, '--runs-dir', runs, '--set', 'tracking=[{kind: mlflow}]'],
      CLEAN_ENV,
      /^tracking: the mlflow tracker needs a server: set tracking_uri, pass --tracking-uri URI, or set MLFLOW_TRACKING_URI$/m,
    ],
    [['sync', path.join(runs, 'nowhere')], CLEAN_ENV, /nowhere: not a run directory \(no run\.json\)/],
  ];
  for (const [args, env, pattern] of cases) {
    const r = await elboAsync(args, env);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  }
  await assert.rejects(
    runExperiment({ config: cfg, runsDir: runs, progress: false, trackingUri: 'file:///tmp/mlruns' }),
    /tracking URI 'file:\/\/\/tmp\/mlruns' is not an MLflow tracking server/,
  );
  assert.ok(!fs.existsSync(runs), 'no run directory was made');
  const fileUri = await elboAsync(['run', cfg, '--runs-dir', runs, '--json', '--set', 'train.epochs=1'], {
    ...CLEAN_ENV,
    MLFLOW_TRACKING_URI: 'file:./mlruns',
  });
  assert.equal(fileUri.status, 0, fileUri.stderr);
  assert.match(fileUri.stderr, /warning: MLFLOW_TRACKING_URI=file:.*is not an http\(s\) tracking server; MLflow tracking stays off/);
  assert.ok(!fs.existsSync(path.join(jsonOf<RunOutput>(fileUri).runDir, 'mlflow')));
});

test('a diverging run is FAILED in MLflow too, with its end time and the reason in the note; sweep cells nest under a parent', async () => {
  const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-failed\n');
  const client = new MlflowClient(server.url, { timeoutMs: 10_000 });
  const parent = await client.createRun({
    experiment_id: await getOrCreateExperiment(client, 't-failed'),
    run_name: 'sweep',
    start_time: Date.now(),
    tags: [],
  });
  process.env.ELBO_MLFLOW_PARENT_RUN_ID = parent.run_id;
  let r;
  try {
    r = await runExperiment({
      config: cfg,
      runsDir: runs,
      progress: false,
      trackingUri: server.url,
      overrides: ['train.optimizer={kind: sgd, lr: 1.0e+12}', 'train.log_every=1'],
    });
  } finally {
    delete process.env.ELBO_MLFLOW_PARENT_RUN_ID;
  }
  assert.equal(r.status, 'FAILED');
  const rec = JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8'));
  const run = (await runsOf(server.url, 't-failed')).find((x) => x.info.run_id !== parent.run_id)!;
  assert.equal(run.info.status, 'FAILED');
  assert.equal(Number(run.info.end_time), Date.parse(rec.end_time));
  const tags = byKey(run.data.tags);
  assert.match(tags['mlflow.note.content'], /FAILED after 0\/3 epochs.*training diverged/s);
  assert.equal(tags['mlflow.parentRunId'], parent.run_id);
});

test('resume: the same MLflow run goes on and ends FINISHED, each epoch once', async () => {
  const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-resume\n');
  let epochs = 0;
  const quiet = { progress: false, runsDir: runs, trackingUri: server.url };
  const cut = await runExperiment({ config: cfg, ...quiet, onEpoch: () => void epochs++, shouldStop: () => epochs >= 1 });
  assert.equal(cut.status, 'KILLED');
  const [killed] = await runsOf(server.url, 't-resume');
  assert.equal(killed.info.status, 'KILLED');
  const resumed = await runExperiment({ resume: cut.runDir, progress: false });
  assert.equal(resumed.status, 'FINISHED');
  const all = await runsOf(server.url, 't-resume');
  assert.equal(all.length, 1);
  assert.equal(all[0].info.status, 'FINISHED');
  assert.equal(byKey(all[0].data.tags)['elbo.resumes'], '1');
  await assertMetricsExactlyOnce(server.url, all[0].info.run_id, cut.runDir);
  // trained on past its end (--set train.epochs=4): still the one MLflow run, FINISHED again, the
  // fourth epoch once, the test metrics measured again (MLflow keeps the 3-epoch point beside it)
  const on = await runExperiment({ resume: cut.runDir, overrides: ['train.epochs=4'], progress: false });
  assert.equal(on.status, 'FINISHED');
  const [again] = await runsOf(server.url, 't-resume');
  assert.equal((await runsOf(server.url, 't-resume')).length, 1);
  assert.equal(again.info.status, 'FINISHED');
  assert.equal(byKey(again.data.tags)['elbo.resumes'], '2');
  assert.equal(byKey(again.data.tags)['elbo.epochs_planned'], '4');
  assert.deepEqual((await history(server.url, again.info.run_id, 'epoch')).map((p) => p.value).sort(), [1, 2, 3, 4]);
  const testElbo = (await history(server.url, again.info.run_id, 'test/elbo')).sort((a, b) => a.step - b.step);
  assert.equal(testElbo.length, 2);
  assert.equal(testElbo[1].value, on.metrics['test/elbo']);
});

test('server killed mid-run and restarted: training goes on, elbo sync sends the rest exactly once', async () => {
  const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-kill\n    backoff_s: 0.05\n    retries: 1\n');
  const child = spawn(
    process.execPath,
    [BIN, 'run', cfg, '--runs-dir', runs, '--json', '--tracking-uri', server.url, '--set', 'train.epochs=16'],
    {
      cwd: ROOT,
      env: { ...process.env, ...Object.fromEntries(Object.keys(CLEAN_ENV).map((k) => [k, ''])), CI: 'true' },
    },
  );
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  // kill the server (whole process group, no clean shutdown) once epoch 2 is on it
  for (;;) {
    const found = await runsOf(server.url, 't-kill').catch(() => []);
    const rid = found[0]?.info.run_id;
    if (rid && (await history(server.url, rid, 'epoch')).length >= 2) break;
    assert.equal(child.exitCode, null, `the run ended before the server was killed: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await server.kill();
  const code = await exited;
  assert.equal(code, 0, stderr);
  assert.match(stderr, /warning: MLflow is behind/);
  assert.match(stderr, /epoch 16\/16/, 'training went on');
  const out = lastJson<RunOutput>(stdout);
  assert.equal(out.status, 'FINISHED');
  const pending = JSON.parse(fs.readFileSync(path.join(out.runDir, 'mlflow', 'state.json'), 'utf8'));
  assert.ok(
    pending.acked <
      fs
        .readFileSync(path.join(out.runDir, 'mlflow', 'spool.jsonl'), 'utf8')
        .trim()
        .split('\n').length,
  );

  // same port, same store
  await server.restart();
  process.stderr.write(`# mlflow server restarted in ${server.startSeconds.at(-1)!.toFixed(1)} s\n`);
  const s1 = await elboAsync(['sync', '--runs-dir', runs, '--json'], CLEAN_ENV);
  assert.equal(s1.status, 0, s1.stderr);
  assert.equal(jsonOf<SyncOutput>(s1).runs.length, 1);
  assert.equal((await syncRun(out.runDir, { env: {} })).status, 'up-to-date');
  const all = await runsOf(server.url, 't-kill');
  assert.equal(all.length, 1);
  assert.equal(all[0].info.status, 'FINISHED');
  await assertMetricsExactlyOnce(server.url, all[0].info.run_id, out.runDir);
  assert.deepEqual(
    (await history(server.url, all[0].info.run_id, 'epoch')).map((p) => p.value),
    Array.from({ length: 16 }, (_, i) => i + 1),
  );
  await assertArtifactsIdentical(server.url, all[0], out.runDir, [
    'config.yaml',
    'run.json',
    'metrics.jsonl',
    'artifacts/reconstructions.png',
    'checkpoints/epoch-0016/weights.bin',
  ]);
});

/** A sweep `grid` of one-epoch cells of the small config in experiment `experiment`, over `axes` (YAML lines under grid:). */
function smallSweep(experiment: string, axes: string): { dir: string; sweep: string } {
  const dir = tmpDir(`elbo-${experiment}-`);
  smallConfig(dir, '');
  const cfgFile = path.join(dir, 'small.yaml');
  fs.writeFileSync(
    cfgFile,
    fs
      .readFileSync(cfgFile, 'utf8')
      .replace('experiment: small', `experiment: ${experiment}`)
      .replace(/eval:[\s\S]*$/, 'eval:\n  - kind: elbo\n'),
  );
  const sweep = path.join(dir, 'grid.yaml');
  fs.writeFileSync(sweep, `base: small.yaml\nset: {train.epochs: 1}\nsweep:\n  grid:\n${axes}`);
  return { dir, sweep };
}

test('elbo sweep --tracking-uri: one parent run, every cell nested under it; a rerun reuses the parent', async () => {
  const { dir, sweep } = smallSweep('t-sweep', '    model.latent: [2, 4]\n    model.prior: [{kind: gaussian}]\n');
  const args = [
    'sweep',
    sweep,
    '--runs-dir',
    path.join(dir, 'runs'),
    '--tracking-uri',
    server.url,
    '--parallel',
    '2',
    '--json',
    '--tag',
    'study=latent',
    '--note',
    'small grid',
  ];
  const r = await elboAsync(args, CLEAN_ENV);
  assert.equal(r.status, 0, r.stderr);
  const sweepDir = jsonOf<SweepOutput>(r).dir;
  const runs = await runsOf(server.url, 't-sweep');
  const parent = runs.find((x) => byKey(x.data.tags)['elbo.sweep'] === 'grid');
  assert.ok(parent, 'a parent run tagged elbo.sweep');
  assert.equal(parent.info.status, 'FINISHED');
  const children = runs.filter((x) => byKey(x.data.tags)['mlflow.parentRunId'] === parent.info.run_id);
  assert.equal(children.length, 2);
  assert.ok(children.every((c) => c.info.status === 'FINISHED'));
  // children are named by their cell, and carry the sweep's --tag and --note
  assert.deepEqual(children.map((c) => c.info.run_name).sort(), ['latent=2,prior=gaussian', 'latent=4,prior=gaussian']);
  for (const c of children) {
    assert.equal(byKey(c.data.tags).study, 'latent');
    assert.equal(byKey(c.data.tags)['elbo.note'], 'small grid');
    const rec = JSON.parse(fs.readFileSync(path.join(byKey(c.data.tags)['elbo.run_dir'], 'run.json'), 'utf8'));
    assert.deepEqual([rec.tags, rec.note], [{ study: 'latent' }, 'small grid']);
  }
  // the parent: the swept axes as params, the cell counts, and byte for byte the sweep's
  // report.html, sweep.json, the comparison table and its plot
  assert.deepEqual(byKey(parent.data.params), {
    base: 'small.yaml',
    'set.train.epochs': '1',
    'grid.model.latent': '[2,4]',
    'grid.model.prior': '[{"kind":"gaussian"}]',
  });
  assert.deepEqual(Object.fromEntries(parent.data.metrics.map((m) => [m.key, m.value])), {
    'sweep/cells': 2,
    'sweep/finished': 2,
    'sweep/failed': 0,
  });
  assert.equal(byKey(parent.data.tags).study, 'latent');
  assert.match(byKey(parent.data.tags)['mlflow.note.content'], /2 cells.*small grid/s);
  await assertArtifactsIdentical(server.url, parent, sweepDir, [
    'report.html',
    'sweep.json',
    'compare.csv',
    'compare-test_elbo.png',
    'compare-test_elbo.svg',
    'curves.png',
    'curves.svg',
    'test-metrics.png',
    'test-metrics.svg',
  ]);
  // the cells' logged models are the parent's outputs too (MLflow lists the sweep as a training run)
  const childModels = children.map((c) => c.outputs.model_outputs[0].model_id).sort();
  assert.deepEqual(parent.outputs.model_outputs.map((o) => o.model_id).sort(), childModels);
  // rerunning finds both cells finished and keeps the one parent
  const again = await elboAsync(args, CLEAN_ENV);
  assert.equal(again.status, 0, again.stderr);
  const after = await runsOf(server.url, 't-sweep');
  assert.equal(after.filter((x) => byKey(x.data.tags)['elbo.sweep'] === 'grid').length, 1);
  assert.equal(after.length, 3);
  assert.equal(
    after.find((x) => byKey(x.data.tags)['elbo.sweep'] === 'grid')!.outputs.model_outputs.length,
    2,
    'the outputs are not added twice',
  );
  // the parent is spooled like a run: nothing is left to send
  const sync = await elboAsync(['sync', sweepDir, '--json'], CLEAN_ENV);
  assert.equal(sync.status, 0, sync.stderr);
  assert.equal(jsonOf<SyncOutput>(sync).runs[0].status, 'up-to-date');
});

test('two processes of one sweep at once (SLURM array tasks, --cell): one parent run, both cells nested under it', async () => {
  const { dir, sweep } = smallSweep('t-tasks', '    model.latent: [2, 4]\n');
  const task = (cell: number) =>
    elboAsync(
      ['sweep', sweep, '--runs-dir', path.join(dir, 'runs'), '--tracking-uri', server.url, '--cell', String(cell), '--json'],
      CLEAN_ENV,
    );
  const [a, b] = await Promise.all([task(0), task(1)]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  const runs = await runsOf(server.url, 't-tasks');
  const parents = runs.filter((x) => byKey(x.data.tags)['elbo.sweep'] === 'grid');
  assert.equal(parents.length, 1, 'one parent, not one per task');
  const children = runs.filter((x) => byKey(x.data.tags)['mlflow.parentRunId'] === parents[0].info.run_id);
  assert.deepEqual(children.map((c) => c.info.run_name).sort(), ['latent=2', 'latent=4']);
});

test('elbo reproduce MLFLOW_RUN_ID: the record comes from the server and the rerun matches it', async () => {
  const { cfg, runs } = configInRepo('');
  const first = jsonOf<RunOutput>(
    await elboAsync(
      ['run', cfg, '--runs-dir', runs, '--tracking-uri', server.url, '--json', '--set', 'train.epochs=1', '--set', 'eval=[{kind: elbo}]'],
      CLEAN_ENV,
    ),
  );
  assert.equal(first.status, 'FINISHED');
  const runId = JSON.parse(fs.readFileSync(path.join(first.runDir, 'mlflow', 'state.json'), 'utf8')).run_id;
  assert.match(runId, /^[0-9a-f]{32}$/);
  const out = path.join(tmpDir('elbo-repro-'), 'runs');
  const r = await elboAsync(['reproduce', runId, '--tracking-uri', server.url, '--runs-dir', out, '--json', '--quiet'], CLEAN_ENV);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const report = jsonOf<ReproReport>(r);
  assert.equal(report.passed, true);
  assert.ok(report.metrics.some((m: ReproReport['metrics'][number]) => m.name === 'test/elbo' && m.diff === 0));
  // the rerun is tracked on the same server, with its report
  const rerunId = JSON.parse(fs.readFileSync(path.join(report.rerun!, 'mlflow', 'state.json'), 'utf8')).run_id;
  const rerun = (await api<{ run: ServerRun }>(server.url, 'GET', 'runs/get', { run_id: rerunId })).run;
  assert.equal(rerun.info.status, 'FINISHED');
  const tags = byKey(rerun.data.tags);
  assert.equal(tags['elbo.reproduce.passed'], 'true');
  assert.equal(tags['elbo.reproduces.mlflow_run_id'], runId);
  await assertArtifactsIdentical(server.url, rerun, report.rerun!, ['artifacts/reproduce-report.md', 'artifacts/reproduce-report.json']);
  const missing = await elboAsync(['reproduce', '0'.repeat(32), '--tracking-uri', server.url, '--runs-dir', out], CLEAN_ENV);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no MLflow run 0{32}|cannot read MLflow run 0{32}/);
});

/**
 * MLflow's own UI (headless Chromium, a fresh profile, so MLflow's GenAI mode) lists the run
 * under "Training runs", with its data set and model. (MLflow 3.17's UI counts a run with a
 * model output as a training run and lists the others only as evaluation runs, typed Eval;
 * checked by hand: with log_model false the "Training runs" entry never appears.)
 */
async function assertTrainingRunInUi(base: string, experiment: string, rec: RunRecord, screenshot: string): Promise<void> {
  const exp = (await api<{ experiment: MlflowExperiment }>(base, 'GET', 'experiments/get-by-name', { experiment_name: experiment }))
    .experiment;
  const browser = await Chromium.launch({ width: 1400, height: 900 });
  try {
    // the row first, its Models cell later (it shows … while the logged models load, longer on a busy machine)
    const model = `${rec.experiment}-vae`;
    const page = await browser.render(`${base}/#/experiments/${exp.experiment_id}/runs`, {
      waitFor: `document.body.innerText.includes(${JSON.stringify(rec.run_id)}) && document.body.innerText.includes(${JSON.stringify(`\n${model}\n`)})`,
      timeoutMs: 90_000,
    });
    fs.mkdirSync(path.join(ROOT, '.test-output'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, '.test-output', screenshot), page.screenshotPng);
    const text = page.text;
    assert.match(text, /\bTraining runs\b/, 'the side bar offers the training runs');
    assert.match(text, /Training runs\n(.*\n){0,3}Views/, 'the page shown is the training runs table');
    // the run's row: its name, its data set with its digest and context, its model
    const row = text.slice(text.indexOf(rec.run_id));
    assert.match(row, new RegExp(`^${rec.run_id}\\n[\\s\\S]*?${rec.data.name} \\(${rec.data.sha256.slice(0, 36)}\\)\\nTraining\\n`));
    assert.match(row, new RegExp(`\\n${model}\\n1 matching run`), 'the Models column shows the logged model, named by experiment and kind');
  } finally {
    await browser.close();
  }
}

test('MLflow UI in headless Chromium: the experiment page lists an elbo run as a training run, with its model and data set', async () => {
  const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-ui\n');
  const r = await runExperiment({
    config: cfg,
    runsDir: runs,
    progress: false,
    trackingUri: server.url,
    overrides: ['train.epochs=1', 'eval=[{kind: elbo}]'],
  });
  assert.equal(r.status, 'FINISHED');
  const rec = JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8'));
  await assertTrainingRunInUi(server.url, 't-ui', rec, 'mlflow-training-runs.png');
});

// ---- without the artifact proxy: a shared file system, as on clusters ---------------------------

test("no artifact proxy (--default-artifact-root DIR --no-serve-artifacts): elbo writes every artifact and the logged model into DIR, MLflow's Python client reads them back, the UI lists a training run", async () => {
  const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-shared\n');
  const r = await elboAsync(['run', cfg, '--runs-dir', runs, '--json', '--tracking-uri', shared.url], CLEAN_ENV);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /warning/);
  const out = jsonOf<RunOutput>(r);
  const [run] = await runsOf(shared.url, 't-shared');
  assert.equal(run.info.status, 'FINISHED');
  assert.ok(
    run.info.artifact_uri.startsWith(`${sharedRoot}/`),
    `the run's artifacts are a path under the shared root (${run.info.artifact_uri})`,
  );
  const files = runArtifactFiles(out.runDir);
  assert.ok(files.includes('artifacts/report.html') && files.some((f) => f.endsWith('/weights.bin')));
  const back = await assertPythonReadBack(shared.url, run.info.run_id, out.runDir, files);
  assert.ok(back.models[0].artifact_location.startsWith(`${sharedRoot}/`), "the model's files are in the shared root too");
  // the model is the run's output: a training run
  assert.deepEqual(
    run.outputs.model_outputs.map((o) => o.model_id),
    [back.models[0].model_id],
  );
  await assertMetricsExactlyOnce(shared.url, run.info.run_id, out.runDir);
  assertSpoolDelivered(out.runDir);
  const rec = JSON.parse(fs.readFileSync(path.join(out.runDir, 'run.json'), 'utf8'));
  await assertTrainingRunInUi(shared.url, 't-shared', rec, 'mlflow-training-runs-shared-root.png');
  // elbo reproduce reads the run's record from the shared directory
  const repro = await elboAsync(
    [
      'reproduce',
      run.info.run_id,
      '--tracking-uri',
      shared.url,
      '--runs-dir',
      path.join(tmpDir('elbo-repro-'), 'runs'),
      '--json',
      '--quiet',
    ],
    CLEAN_ENV,
  );
  assert.equal(repro.status, 0, repro.stdout + repro.stderr);
  assert.equal(jsonOf<ReproReport>(repro).passed, true);
});

test('artifact locations: which ones elbo writes, where, and what it says where it cannot', async () => {
  assert.deepEqual(artifactLocation('mlflow-artifacts:/1/abc/artifacts'), { kind: 'proxy', root: '1/abc/artifacts' });
  assert.deepEqual(artifactLocation('/shared/mlruns/1/abc/artifacts'), { kind: 'file', dir: '/shared/mlruns/1/abc/artifacts' });
  assert.deepEqual(artifactLocation('file:///shared/mlruns/1'), { kind: 'file', dir: '/shared/mlruns/1' });
  assert.deepEqual(artifactLocation('file:/shared/mlruns/1'), { kind: 'file', dir: '/shared/mlruns/1' });
  assert.deepEqual(artifactLocation('file://localhost/shared/mlruns/1'), { kind: 'file', dir: '/shared/mlruns/1' });
  assert.deepEqual(artifactLocation('file://nfs-server/shared/mlruns/1'), { kind: 'other', scheme: 'file://HOST/' });
  assert.deepEqual(artifactLocation('s3://bucket/mlruns/1'), { kind: 'other', scheme: 's3:' });
  assert.deepEqual(artifactLocation('gs://bucket/mlruns/1'), { kind: 'other', scheme: 'gs:' });

  const root = tmpDir('elbo-artifacts-');
  const src = path.join(root, 'weights.bin');
  fs.writeFileSync(src, Buffer.from([0, 1, 2, 255]));
  const client = new MlflowClient(server.url, { timeoutMs: 10_000 });
  const store = (expLocation: string) => new ArtifactStore(client, async () => expLocation);
  // the server's artifact root exists: the experiment's and the run's folders are made
  const exp = path.join(root, 'mlruns', '7');
  fs.mkdirSync(path.dirname(exp));
  await store(exp).put(`${exp}/r1/artifacts`, src, 'checkpoints/epoch-0001/weights.bin');
  assert.ok(fs.readFileSync(path.join(exp, 'r1/artifacts/checkpoints/epoch-0001/weights.bin')).equals(fs.readFileSync(src)));
  assert.ok(
    !fs.readdirSync(path.join(exp, 'r1/artifacts/checkpoints/epoch-0001')).some((f) => f.includes('.tmp')),
    'no temporary file is left',
  );
  assert.ok((await store(exp).get(`file://${exp}/r1/artifacts`, 'checkpoints/epoch-0001/weights.bin')).equals(fs.readFileSync(src)));
  // not there (not mounted), not a directory, a store elbo does not write: ArtifactsUnreachable
  const unreachable = async (exp: string, uri: string, pattern: RegExp) =>
    assert.rejects(store(exp).put(uri, src, 'weights.bin'), (e: unknown) => {
      assert.ok(e instanceof ArtifactsUnreachable, String(e));
      assert.match(e.message, pattern);
      return true;
    });
  const gone = path.join(root, 'nfs', 'mlruns', '7');
  await unreachable(
    gone,
    `${gone}/r1/artifacts`,
    new RegExp(`^cannot write artifacts to ${escapeRe(gone)}/r1/artifacts: ${escapeRe(path.dirname(gone))} does not exist on this machine`),
  );
  assert.ok(!fs.existsSync(path.join(root, 'nfs')), 'nothing is made where the mount is missing');
  const file = path.join(root, 'mlruns', 'a-file');
  fs.writeFileSync(file, 'not a directory');
  await unreachable(file, `${file}/r1/artifacts`, /: it is not a directory here \(ENOTDIR/);
  await unreachable(
    exp,
    's3://bucket/mlruns/7/r1/artifacts',
    /^cannot write artifacts to s3:\/\/bucket\/mlruns\/7\/r1\/artifacts: elbo writes artifacts .* not to s3:$/,
  );
  await assert.rejects(store(exp).put(`${exp}/r1/artifacts`, src, '../../escape.bin'), /leaves the artifact location/);
});

test('an artifact location not mounted here: one warning, the run and its model go on, the files wait in the spool; once mounted, elbo sync writes them and the model is READY', async () => {
  // the experiment's artifacts live on a file system this machine has not mounted
  const mnt = path.join(tmpDir('elbo-nfs-'), 'mnt');
  const location = path.join(mnt, 'mlruns', 't-unmounted');
  await api(shared.url, 'POST', 'experiments/create', { name: 't-unmounted', artifact_location: location });
  const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-unmounted\n');
  const r = await elboAsync(['run', cfg, '--runs-dir', runs, '--json', '--tracking-uri', shared.url, '--set', 'train.epochs=2'], CLEAN_ENV);
  assert.equal(r.status, 0, r.stderr);
  const out = jsonOf<RunOutput>(r);
  const files = runArtifactFiles(out.runDir);
  const modelFiles = 2 + files.filter((f) => f.startsWith('checkpoints/')).length;
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  assert.equal(warnings.length, 1, `one warning: ${r.stderr}`);
  assert.match(
    warnings[0],
    new RegExp(
      `^warning: MLflow: cannot write artifacts to ${escapeRe(location)}/[0-9a-f]{32}/artifacts: ${escapeRe(path.join(mnt, 'mlruns'))} does not exist on this machine \\(the shared file system is not mounted here\\?\\); ` +
        `${files.length + modelFiles} files wait in the spool \\(${escapeRe(path.join(out.runDir, 'mlflow'))}\\), the logged model stays PENDING until then: ` +
        `mount it here \\(or create it, if it belongs on this machine\\), then send them with: elbo sync ${escapeRe(out.runDir)}$`,
    ),
  );
  assert.ok(!fs.existsSync(mnt), 'nothing is written where the file system is not mounted');
  // everything else arrived: the run, its metrics, and its model as its output (a training run), PENDING
  const [run] = await runsOf(shared.url, 't-unmounted');
  assert.equal(run.info.status, 'FINISHED');
  await assertMetricsExactlyOnce(shared.url, run.info.run_id, out.runDir);
  assert.equal(run.outputs.model_outputs.length, 1);
  const modelId = run.outputs.model_outputs[0].model_id;
  assert.equal(
    (await api<{ model: ServerModel }>(shared.url, 'GET', `logged-models/${modelId}`)).model.info.status,
    'LOGGED_MODEL_PENDING',
  );
  // the run's record says what waits, and why
  const state = JSON.parse(fs.readFileSync(path.join(out.runDir, 'mlflow', 'state.json'), 'utf8'));
  assert.deepEqual(state.skipped, []);
  assert.deepEqual(
    state.deferred.map((d: DeferredEvent) => d.type),
    [...files.map(() => 'artifact'), 'model'],
  );
  const show = jsonOf<ShownRun>(await elboAsync(['runs', 'show', out.runDir, '--json'], CLEAN_ENV));
  assert.equal(show.mlflow!.pending, files.length + 1);
  assert.match(show.mlflow!.waiting!, /^cannot write artifacts to .* does not exist on this machine/);
  // still not mounted: sync says so (exit 1) and keeps them
  const early = await elboAsync(['sync', out.runDir], CLEAN_ENV);
  assert.equal(early.status, 1, early.stderr);
  assert.match(early.stdout, /sent 0 events .*; MLflow: cannot write artifacts to .* mount it here/);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out.runDir, 'mlflow', 'state.json'), 'utf8')).deferred.length, files.length + 1);
  // mounted: sync writes them, the model is READY, and MLflow's Python client reads it all back
  fs.mkdirSync(path.join(mnt, 'mlruns'), { recursive: true });
  const s = await elboAsync(['sync', out.runDir, '--json'], CLEAN_ENV);
  assert.equal(s.status, 0, s.stdout + s.stderr);
  const rep = jsonOf<SyncOutput>(s).runs[0];
  assert.deepEqual([rep.status, rep.sent, rep.pending, rep.deferred], ['synced', files.length + 1, 0, 0]);
  const back = await assertPythonReadBack(shared.url, run.info.run_id, out.runDir, files);
  assert.equal(back.models[0].model_id, modelId, 'the same model, not a second one');
  assertSpoolDelivered(out.runDir);
  assert.equal(jsonOf<SyncOutput>(await elboAsync(['sync', out.runDir, '--json'], CLEAN_ENV)).runs[0].status, 'up-to-date');
});

test('an artifact store elbo does not write (s3://): one warning saying what to do; elbo sync --tracking-uri sends the whole run to a server with the artifact proxy', async () => {
  await api(shared.url, 'POST', 'experiments/create', { name: 't-s3', artifact_location: 's3://elbo-test-bucket/mlruns' });
  const { cfg, runs } = configInRepo('tracking:\n  - kind: mlflow\n    experiment_name: t-s3\n');
  const r = await elboAsync(['run', cfg, '--runs-dir', runs, '--json', '--tracking-uri', shared.url, '--set', 'train.epochs=1'], CLEAN_ENV);
  assert.equal(r.status, 0, r.stderr);
  const out = jsonOf<RunOutput>(r);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  assert.equal(warnings.length, 1, `one warning: ${r.stderr}`);
  assert.match(
    warnings[0],
    new RegExp(
      `^warning: MLflow: cannot write artifacts to s3://elbo-test-bucket/mlruns/[0-9a-f]{32}/artifacts: elbo writes artifacts through the server's proxy \\(mlflow-artifacts:\\) or to a file path it can reach, not to s3:; ` +
        `\\d+ files wait in the spool .*: run the tracking server with --serve-artifacts .* elbo sync ${escapeRe(out.runDir)} --tracking-uri URL$`,
    ),
  );
  const [run] = await runsOf(shared.url, 't-s3');
  assert.equal(run.info.status, 'FINISHED');
  assert.equal(run.outputs.model_outputs.length, 1, 'a training run, its model waiting for its files');
  // a server with the artifact proxy gets the whole run, files and model included
  const s = await elboAsync(['sync', out.runDir, '--tracking-uri', server.url, '--json'], CLEAN_ENV);
  assert.equal(s.status, 0, s.stdout + s.stderr);
  assert.equal(jsonOf<SyncOutput>(s).runs[0].status, 'synced');
  const [moved] = await runsOf(server.url, 't-s3');
  assert.equal(moved.info.status, 'FINISHED');
  await assertPythonReadBack(server.url, moved.info.run_id, out.runDir, runArtifactFiles(out.runDir));
  await assertMetricsExactlyOnce(server.url, moved.info.run_id, out.runDir);
  assertSpoolDelivered(out.runDir);
});
