"""Experiment tracking of training runs with MLflow, on a local store.

Every fine-tuning run is recorded: its parameters, its training curve, the held-out metrics of
the parent and the candidate, and the version card as an artefact. The store is a SQLite file
with an artefact folder beside it (``var/mlruns`` by default, git-ignored); MLflow's plain
file store is in maintenance mode and refuses new use. Browse it with
``mlflow ui --backend-store-uri sqlite:///var/mlruns/mlflow.db``.

The client API is used rather than MLflow's fluent one (``mlflow.start_run``), which keeps
an active run in process-global state: the app serves several users in one process.
MLflow is imported only here and only when a run is recorded (it is the optional ``train``
extra, and importing it takes seconds).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_TRACKING_DIR", "TrackedRun", "TrackingSettings"]

#: Where runs are recorded unless ``GROUPER_MLFLOW_DIR`` or the settings say otherwise.
DEFAULT_TRACKING_DIR = Path(__file__).resolve().parents[2] / "var" / "mlruns"

_MAX_PARAM_CHARS = 500  # MLflow refuses longer parameter values


@dataclass(frozen=True)
class TrackingSettings:
    """Where and under which experiment training runs are recorded.

    Attributes
    ----------
    folder : Path or None
        Local store: ``mlflow.db`` and ``artifacts/`` in it. ``None`` reads
        ``GROUPER_MLFLOW_DIR``, else :data:`DEFAULT_TRACKING_DIR`.
    experiment : str
        MLflow experiment name.
    """

    folder: Path | None = None
    experiment: str = "grouper-retrain"

    def resolved_folder(self) -> Path:
        """The store folder, after the environment default."""
        if self.folder is not None:
            return Path(self.folder)
        env = os.environ.get("GROUPER_MLFLOW_DIR")
        return Path(env) if env else DEFAULT_TRACKING_DIR

    def tracking_uri(self) -> str:
        """The SQLite URI of the store."""
        return f"sqlite:///{self.resolved_folder().resolve() / 'mlflow.db'}"


def _client(settings: TrackingSettings):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:  # the optional extra is missing
        raise RuntimeError(
            "experiment tracking needs MLflow: pip install 'grouper[train]' (mlflow-skinny)"
        ) from exc
    folder = settings.resolved_folder().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=settings.tracking_uri())
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        experiment_id = client.create_experiment(
            settings.experiment, artifact_location=(folder / "artifacts").as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    return client, experiment_id


class TrackedRun:
    """One training run recorded in MLflow, as a context manager.

    The run is created on entry, so its id can go into the version card before the card is
    written; it ends FINISHED on a normal exit and FAILED when an exception leaves the block
    (a failed retrain is a run too).

    Parameters
    ----------
    settings : TrackingSettings
    run_name : str
        Shown in the MLflow UI.
    tags : mapping of str to str
    """

    def __init__(self, settings: TrackingSettings, run_name: str, tags: Mapping[str, str] = {}):
        self.settings = settings
        self.run_name = run_name
        self.tags = {"grouper.kind": "retrain", **tags}
        self.run_id: str | None = None
        self._client = None

    def __enter__(self) -> TrackedRun:
        self._client, experiment_id = _client(self.settings)
        run = self._client.create_run(experiment_id, run_name=self.run_name, tags=self.tags)
        self.run_id = run.info.run_id
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._client.set_terminated(self.run_id, status="FAILED" if exc_type else "FINISHED")

    def describe(self) -> dict[str, str]:
        """Where to find the run: for the version card."""
        return {
            "tracker": "mlflow",
            "tracking_uri": self.settings.tracking_uri(),
            "experiment": self.settings.experiment,
            "run_id": self.run_id or "",
        }

    def log(
        self,
        *,
        params: Mapping[str, Any] = {},
        metrics: Mapping[str, float | None] = {},
        curves: Mapping[str, Sequence[tuple[int, float | None]]] = {},
        artifacts: Sequence[Path] = (),
        tags: Mapping[str, str] = {},
    ) -> None:
        """Record parameters, final metrics, curves, artefacts and tags.

        Parameters
        ----------
        params : mapping of str to any
            Settings of the run; values are stringified (long ones shortened). MLflow refuses
            to change a parameter once logged, so log each name once.
        metrics : mapping of str to float
            Final figures; ``None`` and non-finite values are left out.
        curves : mapping of str to sequence of (step, value)
            Metrics along training (training and validation loss).
        artifacts : sequence of Path
            Files to store with the run (the version card).
        tags : mapping of str to str
        """
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        param_list = [Param(str(k), _short(v)) for k, v in params.items()]
        metric_list = [Metric(str(k), float(v), now, 0) for k, v in metrics.items() if _finite(v)]
        for name, points in curves.items():
            metric_list.extend(Metric(name, float(v), now, int(step)) for step, v in points if _finite(v))
        # MLflow caps one batch at 100 params and 1000 metrics.
        for i in range(0, len(param_list), 100):
            self._client.log_batch(self.run_id, params=param_list[i : i + 100])
        for i in range(0, len(metric_list), 1000):
            self._client.log_batch(self.run_id, metrics=metric_list[i : i + 1000])
        if tags:
            self._client.log_batch(self.run_id, tags=[RunTag(str(k), str(v)) for k, v in tags.items()])
        for path in artifacts:
            self._client.log_artifact(self.run_id, str(path))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 1] + "…"
