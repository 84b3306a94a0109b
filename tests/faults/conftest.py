"""Fixtures of the fault tests: an isolated workspace per test, and clean reference artefacts built once.

``reference`` builds every artefact once, undisturbed, in its own workspace: what a rebuilt or
rerun artefact must equal. ``workspace`` points the ``YTREC_*`` folders of this process at a fresh
temporary root (the children get the same folders through their environment).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from ytrec_lib.threads import limit_threads

sys.path.insert(0, str(Path(__file__).parent))

import faultkit  # noqa: E402  (the folder above is not a package)


@dataclass
class Reference:
    """The clean artefacts: ``root`` (their workspace), the dataset, model weights and tables."""

    root: Path
    dataset: object
    candidate: dict[str, torch.Tensor]       # state_dict
    item2vec: np.ndarray                     # (n_videos, 8) float32
    ranker: dict[str, torch.Tensor]          # state_dict

    def copy_to(self, root: Path, *, models: bool = True) -> None:
        """Copy the cached dataset (and, with ``models``, the model files) into workspace ``root``."""
        src, dst = faultkit.folders(self.root)["data"], faultkit.folders(root)["data"]
        dst.mkdir(parents=True, exist_ok=True)
        name = faultkit.target("dataset", self.root).name
        shutil.copytree(src / name, dst / name)
        if models:
            shutil.copytree(src / "models", dst / "models")


def point_at(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Make this process read and write the workspace ``root``."""
    for var, value in faultkit.child_env(root).items():
        if var.startswith("YTREC_"):
            monkeypatch.setenv(var, value)
    monkeypatch.delenv("YTREC_NOTEBOOK", raising=False)
    return root


@pytest.fixture(scope="session", autouse=True)
def one_thread_for_the_session() -> Iterator[None]:
    """``one_thread`` of tests/conftest.py, for the whole session rather than one module: ``reference``
    (session scope) trains the models that the children (one thread each) must equal bit for bit."""
    with limit_threads(1, blas=False):
        yield


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, root)
        ds = faultkit.write("dataset", root)
        run = faultkit.write("candidate", root)
        table = faultkit.write("item2vec", root)
        ranker = faultkit.write("ranker", root)
    return Reference(root, ds, {k: v.clone() for k, v in run.model.state_dict().items()}, table,
                     {k: v.clone() for k, v in ranker.model.state_dict().items()})


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh root whose data/build/results folders this process (and its children) use."""
    return point_at(monkeypatch, tmp_path)
