import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';

/**
 * Run `install` unless `ready()`, one installer at a time across processes (a lock
 * directory; one older than 15 minutes is from a killed installer). Returns whether this
 * process installed.
 */
export async function installOnce(lock: string, ready: () => boolean, install: () => void): Promise<boolean> {
  if (ready()) return false;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (Date.now() - fs.statSync(lock).mtimeMs > 15 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 1000));
      if (ready()) return false;
    }
  }
  try {
    if (ready()) return false;
    install();
    return true;
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * A Python tool from PyPI, pinned, in a virtual environment of its own (`venv`): what the
 * MLflow tests run their server from (.venv-mlflow) and what a sweep's Optuna search
 * runs (.venv-optuna). Installed the first time (python3 -m venv, pip install
 * PACKAGE==VERSION; $PYTHON names another interpreter), reused afterwards: a marker file
 * records the version. Throws an Error saying which step failed and its last output.
 */
export async function ensureVenvTool(o: {
  venv: string;
  pkg: string;
  version: string;
  bin: string;
  log?: (m: string) => void;
}): Promise<{ bin: string; installed: boolean; seconds: number }> {
  const bin = path.join(o.venv, 'bin', o.bin);
  const marker = path.join(o.venv, `.elbo-${o.pkg}-version`);
  const ready = () => fs.existsSync(bin) && fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').trim() === o.version;
  const t0 = Date.now();
  const installed = await installOnce(`${o.venv}.lock`, ready, () => {
    o.log?.(`installing ${o.pkg}==${o.version} into ${o.venv} (first time only)`);
    const python = process.env.PYTHON ?? 'python3';
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, {
        encoding: 'utf8',
        timeout: 15 * 60_000,
        env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' },
      });
      if (r.status !== 0)
        throw new Error(
          `${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${(r.stderr || r.stdout || '').slice(-3000)}`,
        );
    };
    if (!fs.existsSync(path.join(o.venv, 'bin', 'python'))) run(python, ['-m', 'venv', o.venv]);
    run(path.join(o.venv, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', `${o.pkg}==${o.version}`]);
    fs.writeFileSync(marker, o.version + '\n');
  });
  return { bin, installed, seconds: (Date.now() - t0) / 1000 };
}
