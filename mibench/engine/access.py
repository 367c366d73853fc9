"""Trained models as the engine and the attacks see them.

:class:`ModelAccess` is the engine's handle on a stored model: its splits, cached
logits, black-box queries and (white box) its module. Shadows are given to attacks
as they are (a :class:`~mibench.sdk.ReferenceView`: the attacker trained them). The
target is given as a :class:`TargetView`, which has no member list and serves
logits on the evaluation samples without saying which were members.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mibench.engine.models import ModelRef, build_model
from mibench.engine.pools import run_pool, run_splits
from mibench.engine.store import Store, stable_hash
from mibench.registry.code import code_path_digest
from mibench.sdk import Normaliser, Pool, as_index, predict_logits


def predictions_key(model_key: str) -> str:
    """Store key of a model's logits on its whole pool; it follows the prediction code (this module's path)."""
    return stable_hash([model_key, "pool", code_path_digest(__name__)])


class ModelAccess:
    """A stored model: its splits, cached logits, black-box queries and (white-box) module.

    ``members`` are the samples its defense treats as private training data and
    ``nonmembers`` its held-out split. ``excluded`` are the rest of its training
    split, carved out by a defense (AdvReg's and DMP's reference sets): neither
    members nor non-members (REFERENCE §1), so no attack may count them as either.
    """

    def __init__(self, store: Store, ref: ModelRef, device: torch.device) -> None:
        run = ref.run
        splits = run_splits(run)
        split = splits.split(run.role)
        self.store = store
        self.ref = ref
        self.key = ref.key
        self.device = device
        self.eval_batch_size = run.training.eval_batch_size
        self.white_box = run.defense.info.cls.white_box
        saved = store.load_torch("models", self.key)
        # the repeats of a duplicated canary are trained on but are no samples of their own
        self.members: np.ndarray = np.intersect1d(saved["members"].numpy(), split.members)
        self.nonmembers = np.asarray(split.nonmembers)
        self.excluded: np.ndarray = np.setdiff1d(split.members, self.members)
        self._scored = split.scored
        self._canaries = splits.canaries
        self._test = split.nonmembers if split.test is None else split.test
        self._state = saved["state_dict"]
        self._module: nn.Module | None = None
        self._logits: torch.Tensor | None = None
        self.info: dict[str, Any] = store.load_json("models", self.key)["info"]
        self.queries = 0

    @property
    def pool(self) -> Pool:
        return run_pool(self.ref.run)

    def utility(self) -> tuple[np.ndarray, np.ndarray]:
        """(train samples, test samples) of the model's accuracies: clean samples only, never a canary."""
        return np.setdiff1d(self.members, self._canaries), np.setdiff1d(self._test, self._canaries)

    def clean_nonmembers(self) -> np.ndarray:
        """The model's evaluated non-members that are no canaries (an auditor's population, sorted)."""
        nonmembers = np.asarray(self.nonmembers)
        if self._scored is not None:
            nonmembers = nonmembers[np.isin(nonmembers, self._scored)]
        return np.setdiff1d(nonmembers, self._canaries)

    def module(self) -> nn.Module:
        """The network in eval mode on the run's device (white-box attacks only)."""
        if not self.white_box:
            raise PermissionError(f"model {self.key} gives black-box access only")
        return self._network()

    def _network(self) -> nn.Module:
        """The network, whatever the access (predictions need it even for a black-box model)."""
        if self._module is None:
            run = self.ref.run
            fresh = build_model(run.architecture, self.pool, self.device)
            model = run.defense.create().released_architecture(fresh)
            model.load_state_dict(self._state)
            self._module = model.eval()
        return self._module

    @property
    def predictions_key(self) -> str:
        return predictions_key(self.key)

    def pool_logits(self) -> torch.Tensor:
        """Logits on every pool sample, in pool order (float32, CPU): predicted once, stored once.

        Every consumer (accuracies, the target view, reference tables) reads rows of this
        one array, so a model is run over its data once, whatever asks for it.
        """
        if self._logits is None:
            key = self.predictions_key
            if self.store.has("predictions", key, "pt"):
                self._logits = self.store.load_torch("predictions", key)
            else:
                pool = self.pool
                self._logits = predict_logits(self._network(), pool, np.arange(len(pool)), self.device,
                                              self.eval_batch_size)
                self.store.save_torch("predictions", key, self._logits)
        return self._logits

    def logits(self, indices: np.ndarray) -> torch.Tensor:
        """Logits on pool samples ``indices`` (float32, CPU): rows of :meth:`pool_logits`."""
        return self.pool_logits()[as_index(indices)]

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (float32, CPU) on attack-made ``images`` in [0, 1], N x C x H x W; counted in ``queries``."""
        images = torch.as_tensor(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.pool.input_shape:
            raise ValueError(f"queries must be N x {' x '.join(map(str, self.pool.input_shape))} images in [0, 1], "
                             f"got shape {tuple(images.shape)}")
        self.queries += len(images)
        network = self._network()
        normalise = Normaliser(self.pool, self.device)
        out = []
        for start in range(0, len(images), self.eval_batch_size):
            batch = images[start : start + self.eval_batch_size].to(self.device, torch.float32)
            logits, _ = network(normalise(batch))
            out.append(logits.float().cpu())
        return torch.cat(out) if out else torch.zeros((0, self.pool.num_classes))

    def labels(self, indices: np.ndarray) -> torch.Tensor:
        return self.pool.labels[as_index(indices)]

    def evaluation(self) -> tuple[np.ndarray, np.ndarray]:
        """(evaluation samples in pool order, whether each is a member): what the engine scores attacks on."""
        indices = np.sort(np.concatenate([self.members, self.nonmembers]))
        if self._scored is not None:  # a design that scores some samples only (a leave-one-out canary audit)
            indices = indices[np.isin(indices, self._scored)]
        return indices, np.isin(indices, self.members)


class TargetView:
    """The target as an attack sees it: outputs and (white box) the module, never its member list."""

    def __init__(self, access: ModelAccess) -> None:
        self._access = access
        self.key = access.key
        self.device = access.device
        self.info = dict(access.info)

    @property
    def pool(self) -> Pool:
        return self._access.pool

    @property
    def queries(self) -> int:
        return self._access.queries

    def logits(self, indices: np.ndarray) -> torch.Tensor:
        return self._access.logits(indices)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        return self._access.query(images)

    def labels(self, indices: np.ndarray) -> torch.Tensor:
        return self._access.labels(indices)

    def module(self) -> nn.Module:
        return self._access.module()


def open_model(store: Store, ref: ModelRef, device: torch.device) -> ModelAccess:
    return ModelAccess(store, ref, device)
