"""Read back an MLflow run's artifacts and its logged models with MLflow's own Python client.

Usage: python mlflow-readback.py TRACKING_URI RUN_ID DEST

Downloads the run's artifacts under DEST/run and each READY logged model that is the run's
output under DEST/MODEL_ID, then prints one JSON line: the run's artifact URI, the folder the
files were downloaded to and the files (relative paths), and per model its status, source
run, step, artifact location, folder and files.
"""
import json
import os
import sys

import mlflow
from mlflow import MlflowClient


def files_under(root):
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/") for n in names]
    return sorted(out)


def main(uri, run_id, dest):
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    run_dir = os.path.join(dest, "run")
    os.makedirs(run_dir, exist_ok=True)
    run_dir = mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=run_dir, tracking_uri=uri)
    models = []
    for output in run.outputs.model_outputs if run.outputs else []:
        model = client.get_logged_model(output.model_id)
        model_dir = os.path.join(dest, model.model_id)
        os.makedirs(model_dir, exist_ok=True)
        if model.status.value == "READY":
            model_dir = mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=model_dir, tracking_uri=uri)
        models.append({
            "model_id": model.model_id,
            "status": model.status.value,
            "source_run_id": model.source_run_id,
            "step": output.step,
            "artifact_location": model.artifact_location,
            "dir": model_dir,
            "files": files_under(model_dir),
        })
    print(json.dumps({"artifact_uri": run.info.artifact_uri, "run_dir": run_dir, "run_files": files_under(run_dir), "models": models}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
