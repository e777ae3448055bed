"""Options shared by the commands that embed answers: which model versions folder, which device.

Every command that groups new answers embeds them with the registry's *active* version, so
that a retrain that beat its parent is what the next question is grouped with.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grouper.embedding import Encoder
    from grouper.model_versions import ModelRegistry


def add_models_option(parser: argparse.ArgumentParser) -> None:
    """``--models``: the model versions folder."""
    parser.add_argument(
        "--models", type=Path, default=None,
        help="model versions folder; its active version embeds the answers (default: $GROUPER_MODELS_DIR, else models/)",
    )


def registry_of(args: argparse.Namespace) -> ModelRegistry:
    """The registry named by ``--models`` (or its default)."""
    from grouper.model_versions import ModelRegistry

    return ModelRegistry(getattr(args, "models", None))


def active_encoder(args: argparse.Namespace) -> Encoder:
    """The active model version on the device named by ``--device``, its weights verified."""
    from grouper.embedding import choose_device

    return registry_of(args).load(device=choose_device(getattr(args, "device", None)))


def question_encoder(args: argparse.Namespace, model_key: str) -> Encoder:
    """The model version that grouped a stored question (its ``store.model_version``), so
    that new vectors share the space of the stored ones; the active version when that one is
    no longer in the registry."""
    from grouper.embedding import choose_device

    registry = registry_of(args)
    version = registry.version_of(model_key)
    return registry.load(version, device=choose_device(getattr(args, "device", None)))
