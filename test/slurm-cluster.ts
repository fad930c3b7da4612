/**
 * Test setup for the SLURM tests: a real single-node SLURM cluster from Debian's packages.
 *
 * - slurmctld, slurmd, slurm-client and munge are installed with apt-get the first time
 *   (root, as in CI; about a minute) and reused afterwards.
 * - A cluster is made in a fresh directory: its own munge key and munged socket, a
 *   one-node slurm.conf (select/cons_tres, proctrack/linuxproc, no cgroups, no accounting)
 *   on free ports of 127.0.0.1, and the three daemons started by hand in the foreground
 *   (there is no systemd), each in its own process group; stop() ends them by PID.
 * - Commands (sbatch, squeue, scancel, scontrol) find the cluster through SLURM_CONF,
 *   which the jobs inherit too.
 *
 * Where SLURM cannot be installed or started, start() throws, saying why and with the
 * daemons' last log lines: the tests fail, they are not skipped.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { spawn, spawnSync, ChildProcess } from 'child_process';
import { freePort } from './mlflow-server';
import { killGroup, trackGroup } from './processes';
import type { Caught } from '../src/errors';

const PACKAGES = ['slurmctld', 'slurmd', 'slurm-client', 'munge'];

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    const p = path.join(dir, cmd);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** Install SLURM and munge with apt-get unless they are there. */
export function ensureSlurm(log: (m: string) => void = () => {}): void {
  if (['slurmctld', 'slurmd', 'sbatch', 'munged'].every(which)) return;
  if (process.getuid?.() !== 0) throw new Error(`SLURM is not installed and this is not root: apt-get install ${PACKAGES.join(' ')}`);
  log(`installing ${PACKAGES.join(' ')} with apt-get (first time only)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...PACKAGES],
  ]) {
    const r = spawnSync('apt-get', args, { encoding: 'utf8', env, timeout: 15 * 60_000 });
    if (r.status !== 0)
      throw new Error(
        `apt-get ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${(r.stderr || r.stdout || '').slice(-3000)}`,
      );
  }
}

export interface JobTask {
  id: string;
  state: string;
}

export class SlurmCluster {
  private procs: { name: string; proc: ChildProcess; exited?: number | null }[] = [];
  readonly node = os.hostname().split('.')[0];
  /** Seconds from the first daemon's start to the node being idle. */
  startSeconds = 0;

  private constructor(readonly dir: string) {}

  get env(): Record<string, string> {
    return { SLURM_CONF: path.join(this.dir, 'slurm.conf') };
  }

  static async start(log: (m: string) => void = () => {}): Promise<SlurmCluster> {
    ensureSlurm(log);
    // a path without spaces: slurm.conf values are not quoted
    const c = new SlurmCluster(fs.mkdtempSync(path.join(os.tmpdir(), 'elbo-slurm-')));
    try {
      await c.launch();
    } catch (e) {
      await c.stop();
      throw new Error(`a single-node SLURM cluster could not be started in ${c.dir}: ${(e as Caught)?.message ?? e}\n${c.logTail()}`);
    }
    return c;
  }

  private async launch(): Promise<void> {
    const d = this.dir;
    fs.chmodSync(d, 0o700);
    for (const sub of ['munge', 'ctld', 'slurmd', 'log']) fs.mkdirSync(path.join(d, sub), { mode: 0o700 });
    fs.writeFileSync(path.join(d, 'munge', 'munge.key'), crypto.randomBytes(128), { mode: 0o400 });
    const socket = path.join(d, 'munge', 'munge.socket');
    const t0 = Date.now();
    this.spawn('munged', [
      '--foreground',
      '--force',
      `--socket=${socket}`,
      `--key-file=${path.join(d, 'munge', 'munge.key')}`,
      `--log-file=${path.join(d, 'log', 'munged.log')}`,
      `--pid-file=${path.join(d, 'munge', 'munged.pid')}`,
      `--seed-file=${path.join(d, 'munge', 'munged.seed')}`,
    ]);
    await this.until('munged to create its socket', () => fs.existsSync(socket), 10_000);
    const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
    const memMb = Math.min(8000, Math.floor(os.totalmem() / 2 ** 20) - 1000);
    const conf = [
      'ClusterName=elbotest',
      `SlurmctldHost=${this.node}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      // a requeued job waits cred_expire seconds before it starts again (120 by default)
      `AuthInfo=socket=${socket},cred_expire=5`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${path.join(d, 'ctld')}`,
      `SlurmdSpoolDir=${path.join(d, 'slurmd')}`,
      `SlurmctldPidFile=${path.join(d, 'slurmctld.pid')}`,
      `SlurmdPidFile=${path.join(d, 'slurmd.pid')}`,
      `SlurmctldLogFile=${path.join(d, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${path.join(d, 'log', 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      'MpiDefault=none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core_Memory',
      'SchedulerType=sched/backfill',
      'SchedulerParameters=sched_interval=1',
      'ReturnToService=2',
      'KillWait=10',
      'MinJobAge=600',
      `NodeName=${this.node} NodeAddr=127.0.0.1 CPUs=${os.cpus().length} RealMemory=${memMb} State=UNKNOWN`,
      `PartitionName=debug Nodes=${this.node} Default=YES MaxTime=INFINITE State=UP`,
    ];
    fs.writeFileSync(path.join(d, 'slurm.conf'), conf.join('\n') + '\n');
    const conf_ = path.join(d, 'slurm.conf');
    this.spawn('slurmctld', ['-D', '-i', '-f', conf_]);
    this.spawn('slurmd', ['-D', '-N', this.node, '-f', conf_]);
    await this.until(
      'the node to be idle',
      () => {
        const r = this.cmd('sinfo', ['-h', '-n', this.node, '-o', '%T']);
        return r.status === 0 && /^idle/.test(r.stdout.trim());
      },
      60_000,
    );
    this.startSeconds = (Date.now() - t0) / 1000;
  }

  private spawn(name: string, args: string[]): void {
    const bin = which(name);
    if (!bin) throw new Error(`${name} not found`);
    const out = fs.openSync(path.join(this.dir, 'log', `${name}.out`), 'a');
    const proc = spawn(bin, args, { detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...this.env } });
    fs.closeSync(out);
    const entry: { name: string; proc: ChildProcess; exited?: number | null } = { name, proc };
    proc.on('exit', (code) => (entry.exited = code));
    this.procs.push(entry);
    trackGroup(proc);
  }

  private async until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const t0 = Date.now();
    while (!check()) {
      const dead = this.procs.find((p) => p.exited !== undefined);
      if (dead) throw new Error(`${dead.name} exited (${dead.exited}) while waiting for ${what}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** A SLURM command against this cluster. */
  cmd(name: string, args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(which(name) ?? name, args, { encoding: 'utf8', env: { ...process.env, ...env, ...this.env }, timeout: 30_000 });
    return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  }

  /** Submit a script; returns the job id. `env` is what the job sees on top of this process's. */
  sbatch(script: string, env: Record<string, string> = {}): string {
    const r = this.cmd('sbatch', ['--parsable', script], env);
    if (r.status !== 0) throw new Error(`sbatch ${script} failed: ${r.stderr.trim()}`);
    return r.stdout.trim().split(';')[0];
  }

  /** The job's tasks still known to squeue (pending, running, completing). */
  tasks(jobId: string): JobTask[] {
    const r = this.cmd('squeue', ['-h', '-r', '-j', jobId, '-o', '%i %T']);
    if (r.status !== 0) return [];
    return r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [id, state] = l.trim().split(/\s+/);
        return { id, state };
      });
  }

  /** Wait (polling squeue: `sbatch --wait` lags) until none of the jobs' tasks is left. */
  async waitDone(jobIds: string[], timeoutMs = 180_000): Promise<void> {
    await this.until(`jobs ${jobIds.join(', ')} to end`, () => jobIds.every((j) => !this.tasks(j).length), timeoutMs);
  }

  logTail(): string {
    const logs = path.join(this.dir, 'log');
    if (!fs.existsSync(logs)) return '';
    return fs
      .readdirSync(logs)
      .map((f) => `--- ${f}:\n${fs.readFileSync(path.join(logs, f), 'utf8').trim().split('\n').slice(-8).join('\n')}`)
      .join('\n');
  }

  /** Cancel what is left of the jobs, then stop the daemons by PID (their whole process groups). */
  async stop(): Promise<void> {
    const jobs = this.cmd('squeue', ['-h', '-o', '%A']).stdout.trim().split('\n').filter(Boolean);
    if (jobs.length) this.cmd('scancel', jobs);
    for (const { proc } of [...this.procs].reverse()) killGroup(proc, 'SIGTERM');
    const t0 = Date.now();
    while (this.procs.some((p) => p.exited === undefined) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
    for (const { proc } of this.procs) {
      killGroup(proc, 'SIGKILL');
    }
    this.procs = [];
  }
}
