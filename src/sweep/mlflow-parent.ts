import * as fs from 'fs';
import * as path from 'path';
import type { LoadedConfig } from '../config/load';
import type { SweepSpec } from './spec';
import { MlflowClient, isHttpUri, redactUri } from '../track/mlflow-client';
import { getOrCreateExperiment } from '../track/mlflow-replay';
import { experimentNameFor, mlflowTracker } from '../track/mlflow';
import { withOptionDefaults } from '../registry/types';

export interface ParentRun {
  runId: string;
  trackingUri: string;
  finish(status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void>;
  /** Upload a file as an artifact of the parent run (a failure is a warning). */
  logArtifact(localFile: string, artifactPath: string): Promise<void>;
}

/**
 * The MLflow run a sweep's cells nest under (their tag mlflow.parentRunId), when MLflow
 * is on for the sweep: --tracking-uri, an mlflow tracker in the base config, or
 * MLFLOW_TRACKING_URI. Its id is kept in the sweep directory, so rerunning the sweep
 * nests the new cells under the same parent. A server that is away costs only the
 * nesting: the cells still spool their own runs (elbo sync sends them later).
 */
export async function sweepParentRun(
  spec: SweepSpec,
  first: LoadedConfig,
  dir: string,
  cells: number,
  o: { trackingUri?: string; warn: (m: string) => void; env?: NodeJS.ProcessEnv },
): Promise<ParentRun | null> {
  const env = o.env ?? process.env;
  const named = first.config.tracking.find((t) => t.kind === 'mlflow');
  const tracker = named ? withOptionDefaults(mlflowTracker, named) : undefined;
  const uri = o.trackingUri ?? tracker?.tracking_uri ?? env.MLFLOW_TRACKING_URI;
  if (!uri || !isHttpUri(uri)) return null;
  const client = new MlflowClient(uri, { timeoutMs: 10_000, env });
  const file = path.join(dir, 'mlflow-parent.json');
  try {
    let runId: string;
    const saved = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
    if (saved && saved.tracking_uri === redactUri(uri)) {
      runId = saved.run_id;
      await client.updateRun(runId, 'RUNNING');
    } else {
      const experimentId = await getOrCreateExperiment(client, experimentNameFor(tracker ?? {}, first.config.experiment, env));
      const tags = {
        'mlflow.runName': `sweep ${spec.name}`,
        'mlflow.source.name': spec.file,
        'mlflow.note.content': `elbo sweep of ${cells} cells over ${spec.base ? path.basename(spec.base) : 'several base configs'}`,
        'elbo.sweep': spec.name,
        'elbo.sweep.cells': String(cells),
      };
      const info = await client.createRun({
        experiment_id: experimentId,
        run_name: `sweep ${spec.name}`,
        start_time: Date.now(),
        tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
      });
      runId = info.run_id;
      fs.writeFileSync(file, JSON.stringify({ tracking_uri: redactUri(uri), run_id: runId }, null, 2) + '\n');
    }
    return {
      runId,
      trackingUri: uri,
      logArtifact: async (localFile, artifactPath) => {
        try {
          const run = await client.getRun(runId);
          await client.uploadArtifact(run.info.artifact_uri, localFile, artifactPath);
        } catch (e: any) {
          o.warn(`could not upload ${artifactPath} to the sweep's MLflow parent run: ${e?.message ?? e}`);
        }
      },
      finish: async (status) => {
        try {
          await client.updateRun(runId, status, Date.now());
        } catch (e: any) {
          o.warn(`could not end the sweep's MLflow parent run: ${e?.message ?? e}`);
        }
      },
    };
  } catch (e: any) {
    o.warn(`MLflow at ${redactUri(uri)} is not reachable for the sweep's parent run (${String(e?.message ?? e).split('\n')[0]}); cells are tracked without nesting`);
    return null;
  }
}
