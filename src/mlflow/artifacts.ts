import * as fs from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';
import { MlflowClient, MlflowError } from './client';
import type { Caught } from '../errors';

/**
 * Where MLflow keeps a run's (or a logged model's) artifacts, and how elbo writes them there.
 *
 * - `mlflow-artifacts:` — the tracking server's artifact proxy (`mlflow server`'s default):
 *   uploaded over HTTP.
 * - `file:` or an absolute path — a server started with `--default-artifact-root /shared/path
 *   --no-serve-artifacts` (a cluster's shared file system): elbo writes the files there itself,
 *   as MLflow's Python client does.
 * - anything else (`s3://`, `gs://`, ...) — a store elbo does not write.
 *
 * A location elbo cannot write is an ArtifactsUnreachable error: the replay keeps the event in
 * the spool (state.json `deferred`) and `elbo sync` tries it again.
 */
export type ArtifactLocation = { kind: 'proxy'; root: string } | { kind: 'file'; dir: string } | { kind: 'other'; scheme: string };

export function artifactLocation(uri: string): ArtifactLocation {
  const proxied = MlflowClient.proxiedRoot(uri);
  if (proxied !== null) return { kind: 'proxy', root: proxied };
  if (uri.startsWith('/')) return { kind: 'file', dir: path.resolve(uri) };
  if (/^file:/i.test(uri)) {
    try {
      // file:/a, file:///a and file://localhost/a; another host is not a local path
      return { kind: 'file', dir: fileURLToPath(uri.replace(/^file:(?!\/\/)/i, 'file://')) };
    } catch {
      return { kind: 'other', scheme: 'file://HOST/' };
    }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri);
  return { kind: 'other', scheme: scheme ? `${scheme[1]}:` : uri };
}

export class ArtifactsUnreachable extends MlflowError {
  constructor(
    /** The artifact location as the server gave it. */
    readonly location: string,
    /** Why, in a few words (no location in it). */
    readonly reason: string,
    /** What to do about it; null: a store elbo does not write at all. */
    readonly fix: string | null,
  ) {
    super(`cannot write artifacts to ${location}: ${reason}`, null, 'ARTIFACTS_UNREACHABLE', false);
    this.name = 'ArtifactsUnreachable';
  }
}

/** What to do about an unreachable artifact location, ending with the command that sends the files then. */
export function unreachableRemedy(fix: string | null, runDir: string): string {
  if (fix === null) {
    return `run the tracking server with --serve-artifacts (its artifact proxy) for new runs, and send this one to such a server with: elbo sync ${runDir} --tracking-uri URL`;
  }
  return `${fix}, then send them with: elbo sync ${runDir}`;
}

/** Error codes of a file system that is there but refuses the write (or is broken). */
const WRITE_ERRORS: Record<string, [string, string]> = {
  EACCES: ['is not writable here', 'make it writable for this user'],
  EPERM: ['is not writable here', 'make it writable for this user'],
  EROFS: ['is on a read-only file system here', 'mount it writable here'],
  ENOTDIR: ['is not a directory here', 'check the path'],
  ENOENT: ['disappeared while elbo wrote to it', 'check the mount'],
  ENOSPC: ['is full', 'free space on it'],
  EDQUOT: ['is over its quota', 'free space on it'],
  EIO: ['cannot be written (file system error)', 'check the mount'],
  ESTALE: ['cannot be written (stale file handle)', 'remount it'],
};

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function inside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** An artifact path (a/b.png) as a relative path that stays below its root. */
function safeRelative(artifactPath: string): string {
  const segs = artifactPath.split('/').filter((s) => s && s !== '.');
  if (segs.some((s) => s === '..'))
    throw new MlflowError(`artifact path '${artifactPath}' leaves the artifact location`, null, 'BAD_REQUEST', false);
  return path.join(...segs);
}

export class ArtifactStore {
  /** Local directories already checked in this process. */
  private readonly checked = new Set<string>();

  /**
   * `experimentLocation`: the experiment's artifact location (what the server made the run's
   * and the model's locations under); its parent, the server's artifact root, must exist here.
   */
  constructor(
    private readonly client: MlflowClient,
    private readonly experimentLocation: () => Promise<string | null>,
  ) {}

  /** Write one local file as artifact `artifactPath` of the location `uri`. */
  async put(uri: string, localFile: string, artifactPath: string): Promise<void> {
    const loc = artifactLocation(uri);
    if (loc.kind === 'proxy') return this.client.uploadArtifact(uri, localFile, artifactPath);
    if (loc.kind === 'other') {
      throw new ArtifactsUnreachable(
        uri,
        `elbo writes artifacts through the server's proxy (mlflow-artifacts:) or to a file path it can reach, not to ${loc.scheme}`,
        null,
      );
    }
    await this.reachable(uri, loc.dir);
    const dest = path.join(loc.dir, safeRelative(artifactPath));
    const tmp = `${dest}.elbo-${process.pid}.tmp`;
    try {
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(localFile, tmp);
      fs.renameSync(tmp, dest);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw writeError(uri, e, localFile);
    }
  }

  /** The bytes of artifact `artifactPath` of the location `uri`. */
  async get(uri: string, artifactPath: string): Promise<Buffer> {
    const loc = artifactLocation(uri);
    if (loc.kind === 'proxy') return this.client.downloadArtifact(uri, artifactPath);
    if (loc.kind === 'other')
      throw new ArtifactsUnreachable(
        uri,
        `elbo reads artifacts through the server's proxy (mlflow-artifacts:) or from a file path it can reach, not from ${loc.scheme}`,
        null,
      );
    const file = path.join(loc.dir, safeRelative(artifactPath));
    try {
      return fs.readFileSync(file);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new MlflowError(
        `cannot read artifact ${file}: ${err.code ?? err.message}`,
        err.code === 'ENOENT' ? 404 : null,
        err.code === 'ENOENT' ? 'RESOURCE_DOES_NOT_EXIST' : null,
        false,
      );
    }
  }

  /**
   * A file location is written only where the server's artifact root (the parent of the
   * experiment's artifact location) exists on this machine: a shared file system that is
   * not mounted here must not be filled in as local directories.
   */
  private async reachable(uri: string, dir: string): Promise<void> {
    if (this.checked.has(dir)) return;
    const exp = await this.experimentLocation();
    const expLoc = exp ? artifactLocation(exp) : null;
    const anchor = expLoc?.kind === 'file' && inside(dir, expLoc.dir) ? expLoc.dir : dir;
    if (!isDir(anchor) && !isDir(path.dirname(anchor))) {
      throw new ArtifactsUnreachable(
        uri,
        `${path.dirname(anchor)} does not exist on this machine (the shared file system is not mounted here?)`,
        'mount it here (or create it, if it belongs on this machine)',
      );
    }
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.accessSync(dir, fs.constants.W_OK);
    } catch (e) {
      throw writeError(uri, e);
    }
    this.checked.add(dir);
  }
}

/**
 * A failed write as ArtifactsUnreachable when the file system refused it (not when `source` is
 * gone); anything else is given back as it was thrown.
 */
function writeError(uri: string, e: unknown, source?: string): unknown {
  const err = e as Caught;
  const known = err?.code ? WRITE_ERRORS[err.code] : undefined;
  if (!known || (source && err?.path === source)) return e;
  return new ArtifactsUnreachable(uri, `it ${known[0]} (${err?.code}${err?.path ? `: ${err.path}` : ''})`, known[1]);
}
