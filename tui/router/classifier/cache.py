"""The on-disk cache of trained local models.

A trained model is cached as plain arrays (:meth:`LinearModel.save
<tui.router.classifier.model.LinearModel.save>`) under ``ROUTEDECK_CACHE_DIR`` (or the user's
cache folder), keyed by a hash of everything it was trained from
(:func:`~tui.router.classifier.training.model_key`), so a warm start imports numpy and not
scikit-learn; :func:`load_or_train` loads it, or trains and writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tui.router import settings
from tui.router.classifier.model import LinearModel
from tui.router.classifier.training import (
    DEFAULT_PARAMS,
    TrainParams,
    examples_by_label,
    model_key,
    train,
    vocabularies,
)
from tui.router.types import RoutingTable
from tui.router.units import seconds

ProgressFn = Callable[[str], None]


CACHE_ENV = settings.CACHE_DIR
_CACHE_KEEP = 6  # cached models kept; older ones are removed


def cache_dir() -> Path:
    """Where trained models are cached (``settings.cache_dir``: ``$ROUTEDECK_CACHE_DIR``)."""
    return settings.cache_dir()


def cache_path(key: str, directory: Path | None = None) -> Path:
    return (directory or cache_dir()) / f"classifier-{key[:32]}.npz"


def prune_cache(directory: Path, keep: Path) -> None:
    try:
        files = sorted(directory.glob("classifier-*.npz"), key=lambda p: p.stat().st_mtime)
        for old in files[:-_CACHE_KEEP]:
            if old != keep:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def load_or_train(
    table: RoutingTable,
    *,
    directory: Path | None = None,
    use_cache: bool = True,
    on_progress: ProgressFn | None = None,
    params: TrainParams = DEFAULT_PARAMS,
) -> LinearModel:
    """The local model for ``table``: from the disk cache when it matches, else trained (and
    then cached). A corrupt or mismatching cache file is ignored and overwritten."""
    say = on_progress or (lambda _msg: None)
    key = model_key(table, params)
    path = cache_path(key, directory) if use_cache else None
    if path is not None and path.exists():
        try:
            model = LinearModel.load(path, key)
            say(f"classifier loaded from cache ({len(model.labels)} task types)")
            return model
        except ValueError as exc:
            say(f"classifier cache ignored: {exc}")
    examples = examples_by_label(table)
    n = sum(len(v) for v in examples.values())
    say(f"training the classifier on {n} examples of {len(examples)} task types…")
    model = train(examples, params, key=key, vocabulary=vocabularies(table)).model
    say(f"classifier trained in {seconds(model.meta['train_s'], digits=2)}")
    if path is not None:
        try:
            model.save(path)
            prune_cache(path.parent, path)
        except OSError as exc:
            say(f"classifier cache not written: {exc.strerror or exc}")
    return model
