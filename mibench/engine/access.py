"""Trained models as the engine and the attacks see them.

:class:`ModelAccess` is the engine's handle on a stored model: its splits, cached
logits, black-box queries and (white box) its module. Shadows are given to attacks
as they are (a :class:`~mibench.sdk.ShadowView`: the attacker trained them). The
target is given as a :class:`TargetView`, which has no member list and serves
logits on the evaluation samples without saying which were members.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch import nn

from mibench.engine.models import ModelRef, build_model
from mibench.engine.pools import load_pool, protocol
from mibench.engine.store import Store, stable_hash
from mibench.sdk import Normaliser, Pool, as_index, predict_logits


def logits_key(model_key: str, indices: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]
    return stable_hash([model_key, digest])


class ModelAccess:
    """A stored model: its splits, cached logits, black-box queries and (white-box) module.

    ``members`` are the samples its defense treats as private training data and
    ``nonmembers`` its held-out split. ``excluded`` are the rest of its training
    split, carved out by a defense (AdvReg's and DMP's reference sets): neither
    members nor non-members (REFERENCE §1), so no attack may count them as either.
    """

    def __init__(self, store: Store, ref: ModelRef, device: torch.device) -> None:
        run = ref.run
        split = protocol(run.dataset, run.split_seed, run.layout).split_for(run.role)
        self.store = store
        self.ref = ref
        self.key = ref.key
        self.device = device
        self.eval_batch_size = run.training.eval_batch_size
        self.white_box = run.defense.info.cls.white_box
        saved = store.load_torch("models", self.key)
        self.members: np.ndarray = saved["members"].numpy()
        self.nonmembers = np.asarray(split.nonmembers)
        self.excluded: np.ndarray = np.setdiff1d(split.members, self.members)
        self._state = saved["state_dict"]
        self._module: nn.Module | None = None
        self.info: dict[str, Any] = store.load_json("models", self.key)["info"]
        self.queries = 0

    @property
    def pool(self) -> Pool:
        return load_pool(self.ref.run.dataset)

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

    def logits(self, indices: np.ndarray) -> torch.Tensor:
        """Logits on pool samples ``indices`` (float32, CPU), computed once and cached."""
        indices = np.asarray(indices, dtype=np.int64)
        key = logits_key(self.key, indices)
        if self.store.has("predictions", key, "pt"):
            return self.store.load_torch("predictions", key)
        logits = predict_logits(self._network(), self.pool, indices, self.device, self.eval_batch_size)
        self.store.save_torch("predictions", key, logits)
        return logits

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
        return indices, np.isin(indices, self.members)

    def evaluation_logits(self) -> tuple[np.ndarray, torch.Tensor]:
        """Logits on the evaluation samples, computed members first then non-members (one cached array).

        Returns (indices in that order, logits): the order the engine has always
        predicted in, so that a view's answers do not depend on how it is asked.
        """
        order = np.concatenate([self.members, self.nonmembers])
        return order, self.logits(order)


class TargetView:
    """The target as an attack sees it: outputs and (white box) the module, never its member list.

    Logits on any evaluation sample are rows of one cached prediction of the whole
    evaluation set, whatever order or subset an attack asks for.
    """

    def __init__(self, access: ModelAccess) -> None:
        self._access = access
        self.key = access.key
        self.device = access.device
        self.info = dict(access.info)
        order, logits = access.evaluation_logits()
        position = np.argsort(order, kind="stable")
        self._eval_sorted = order[position]
        self._eval_logits = logits[torch.as_tensor(position)]

    @property
    def pool(self) -> Pool:
        return self._access.pool

    @property
    def queries(self) -> int:
        return self._access.queries

    def logits(self, indices: np.ndarray) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        at = np.searchsorted(self._eval_sorted, indices)
        found = (at < len(self._eval_sorted)) & (self._eval_sorted[np.minimum(at, len(self._eval_sorted) - 1)] == indices)
        if found.all():
            return self._eval_logits[torch.as_tensor(at)]
        return self._access.logits(indices)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        return self._access.query(images)

    def labels(self, indices: np.ndarray) -> torch.Tensor:
        return self._access.labels(indices)

    def module(self) -> nn.Module:
        return self._access.module()


def open_model(store: Store, ref: ModelRef, device: torch.device) -> ModelAccess:
    return ModelAccess(store, ref, device)
