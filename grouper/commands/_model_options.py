"""Options shared by the commands that embed answers: which model versions folder, which device.

Every command that groups new answers embeds them with the registry's *active* version, so
that a retrain that beat its parent is what the next question is grouped with.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from grouper.embedding import Encoder
    from grouper.model_versions import ModelRegistry
    from grouper.store import Store


def add_models_option(parser: argparse.ArgumentParser) -> None:
    """``--models``: the model versions folder."""
    parser.add_argument(
        "--models", type=Path, default=None,
        help="model versions folder; its active version embeds the answers (default: $GROUPER_MODELS_DIR, else models/)",
    )


def registry_of(args: argparse.Namespace) -> ModelRegistry:
    """The registry named by ``--models`` (or its default)."""
    from grouper.model_versions import ModelRegistry

    folder = getattr(args, "models", None)
    if folder is not None and not folder.exists() and not folder.parent.is_dir():
        # A mistyped path would become a new registry, grouping with the base model unseen.
        raise ValueError(f"--models {folder}: its folder {folder.parent} does not exist; check the path (a new registry needs an existing folder to live in)")
    if folder is not None and folder.exists() and not folder.is_dir():
        raise ValueError(f"--models {folder} is a file; name the model versions folder")
    return ModelRegistry(folder)


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


def stored_vectors(
    store: Store, question_id: str, texts: Sequence[str], registry: Callable[[], ModelRegistry], instead: str
) -> dict[str, np.ndarray]:
    """Embeddings of a question's (normalised) texts by the model that grouped it, from the
    store's cache; only the misses are embedded, by that model, so that a command whose texts
    were all embedded at import never loads a model (nor torch: ``registry`` is called only
    then). A blank text gets zeros.

    Raises ``ValueError`` (ending with ``instead``, what to do) when texts are missing from the
    cache and the registry no longer has the model that grouped the question.
    """
    model_key = store.model_version(question_id)
    found = store.embeddings.get_many(model_key, [t for t in texts if t])
    missing = sorted({t for t in texts if t and t not in found})
    if missing:
        versions = registry()
        version = versions.version_of(model_key)
        encoder = versions.load(version) if version is not None else None
        if encoder is None or encoder.model_key != model_key:
            raise ValueError(
                f"question {question_id} was grouped with model {model_key}, whose embeddings of "
                f"{len(missing)} of its texts are not cached; {instead}"
            )
        found.update(zip(missing, encoder.encode(missing, cache=store.embeddings).vectors, strict=True))
    dim = len(next(iter(found.values()))) if found else 1
    return {t: found[t] if t else np.zeros(dim, dtype=np.float32) for t in texts}
