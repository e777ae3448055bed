"""Fine-tuning the encoder on the instructors' corrections (the data flywheel).

- :mod:`grouper.training.losses`: the pair loss.
- :mod:`grouper.training.finetune`: contrastive fine-tuning with early stopping.
- :mod:`grouper.training.tracking`: MLflow records of every run.
- :mod:`grouper.training.retrain`: pairs -> candidate -> held-out check -> model version.

The fast path that adapts within one question while it is reviewed is
:mod:`grouper.adaptation`; the model versions are :mod:`grouper.model_versions`.
"""

from grouper.training.finetune import EvalRecord, FineTuneResult, FineTuneSettings, fine_tune, pair_loss
from grouper.training.losses import ContrastiveLoss
from grouper.training.retrain import HeldOutMetric, RetrainOutcome, apa_metric, retrain, retrain_from_store
from grouper.training.tracking import TrackedRun, TrackingSettings

__all__ = [
    "ContrastiveLoss",
    "EvalRecord",
    "FineTuneResult",
    "FineTuneSettings",
    "HeldOutMetric",
    "RetrainOutcome",
    "TrackedRun",
    "TrackingSettings",
    "apa_metric",
    "fine_tune",
    "pair_loss",
    "retrain",
    "retrain_from_store",
]
