"""Open a sardine local store (./mlruns) with MLflow's own Python client and report what MLflow sees.

Run with the MLflow venv's Python (not the reference venv):

    .venv-mlflow/bin/python tools/check_local_store.py <mlruns-dir> [--expect expected.json]

Prints one JSON document: every experiment with its runs (name, status, times, parent, params, tags,
full metric histories as [step, timestamp, value], dataset inputs, artifact paths). Non-finite metric
values are written as the strings "NaN", "Infinity", "-Infinity".

With --expect, compares MLflow's view with a JSON file of the same shape listing the runs that must be
there (by run id; every field given must match exactly, fields left out are not checked) and exits 1
naming each difference.
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

# MLflow 3.13+ refuses the file store unless asked explicitly.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


def number(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def artifact_paths(client, run_id, path=None):
    out = []
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            out.extend(artifact_paths(client, run_id, info.path))
        else:
            out.append(info.path)
    return sorted(out)


def describe_run(client, run):
    metrics = {}
    for key in sorted(run.data.metrics):
        history = client.get_metric_history(run.info.run_id, key)
        metrics[key] = [[m.step, m.timestamp, number(m.value)] for m in history]
    return {
        "run_id": run.info.run_id,
        "name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "parent_run_id": run.data.tags.get("mlflow.parentRunId"),
        "params": dict(sorted(run.data.params.items())),
        "tags": dict(sorted(run.data.tags.items())),
        "metrics": metrics,
        "datasets": sorted(
            (
                {
                    "name": d.dataset.name,
                    "digest": d.dataset.digest,
                    "source_type": d.dataset.source_type,
                    "source": d.dataset.source,
                    "context": next((t.value for t in d.tags if t.key == "mlflow.data.context"), None),
                }
                for d in run.inputs.dataset_inputs
            ),
            key=lambda d: d["name"],
        ),
        "artifacts": artifact_paths(client, run.info.run_id),
    }


def read_store(root):
    client = MlflowClient(tracking_uri=Path(root).resolve().as_uri())
    experiments = []
    for experiment in sorted(client.search_experiments(view_type=ViewType.ALL), key=lambda e: e.experiment_id):
        runs = client.search_runs(
            [experiment.experiment_id], run_view_type=ViewType.ALL, max_results=50000, order_by=["attributes.start_time ASC"]
        )
        experiments.append(
            {
                "experiment_id": experiment.experiment_id,
                "name": experiment.name,
                "lifecycle_stage": experiment.lifecycle_stage,
                "runs": [describe_run(client, run) for run in runs],
            }
        )
    return {"experiments": experiments}


def differences(expected, actual, path):
    """Every field of `expected` must equal the same field of `actual`; dicts are compared key by key."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            else:
                out.extend(differences(value, actual[key], f"{path}.{key}"))
        return out
    if expected != actual:
        return [f"{path}: expected {json.dumps(expected)[:200]}, MLflow reads {json.dumps(actual)[:200]}"]
    return []


def check(expected, seen):
    runs = {run["run_id"]: (experiment, run) for experiment in seen["experiments"] for run in experiment["runs"]}
    problems = []
    for want in expected["runs"]:
        found = runs.get(want["run_id"])
        if found is None:
            problems.append(f"run {want['run_id']} ({want.get('name')}): not found by MLflow")
            continue
        experiment, run = found
        if "experiment_name" in want and want["experiment_name"] != experiment["name"]:
            problems.append(f"run {want['run_id']}: in experiment {experiment['name']!r}, expected {want['experiment_name']!r}")
        fields = {k: v for k, v in want.items() if k not in ("run_id", "experiment_name")}
        problems.extend(differences(fields, run, f"run {want['run_id']} ({want.get('name')})"))
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="the mlruns folder")
    parser.add_argument("--expect", help="JSON file listing the runs that must be there")
    args = parser.parse_args()
    if not Path(args.store, "0", "meta.yaml").exists() and not any(Path(args.store).glob("*/meta.yaml")):
        print(f"{args.store}: no MLflow experiment folder (<id>/meta.yaml) in it", file=sys.stderr)
        return 1
    seen = read_store(args.store)
    print(json.dumps(seen, indent=1, sort_keys=True))
    if args.expect:
        with open(args.expect) as f:
            expected = json.load(f)
        problems = check(expected, seen)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"{len(problems)} difference(s) between {args.expect} and what MLflow reads", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
