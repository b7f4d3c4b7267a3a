"""One entry point for every data set: a name (or .npz path, or folder:PATH) -> a DataSet, cached per process."""

from __future__ import annotations

import functools
from typing import Any

from tuner.core.errors import TunerError
from tuner.core.settings import StudyConfig
from tuner.data.builtin import load_builtin
from tuner.data.dataset import DataSet, stratified_subset
from tuner.data.image_folder import PREFIX, load_folder


@functools.lru_cache(maxsize=4)
def load_dataset(name: str, data_dir: str | None = None, subset: int = 0, seed: int = 0, **folder_options: Any) -> DataSet:
    """The training split of data set `name` (a stratified `subset` of it when > 0); the test split sealed.

    Loads are cached per process, so that folds and trials share one copy.
    Raises TunerError for an unknown name or missing, corrupt files.
    """
    if name.startswith(PREFIX) or name == "folder":  # your own images
        root = name[len(PREFIX) :] or data_dir
        if not root:
            raise TunerError("data set 'folder' needs the folder: pass --data-dir PATH or write dataset = 'folder:PATH'")
        return load_folder(root, subset=subset, seed=seed, **folder_options)
    return stratified_subset(load_builtin(name, data_dir), subset, seed)


def load_study_data(config: StudyConfig, subset: int | None = None) -> DataSet:
    """The training split `config` names, as its study loads it: its data set, folder options and seed.

    `subset`: images to keep instead of the config's own `subset` (0 keeps them all).
    """
    kept = config.subset if subset is None else subset
    return load_dataset(config.dataset, config.data_dir, kept, config.seed, **config.folder_options())
