"""A trained model as attacks see it: its splits, cached logits and white-box module."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mibench.interfaces import Pool
from mibench.pools import load_pool, protocol
from mibench.store import Store, stable_hash
from mibench.training import predict_logits

if TYPE_CHECKING:
    from mibench.jobs import TrainJob


def build_model(architecture, pool: Pool, device: torch.device) -> nn.Module:
    """A fresh network of ``architecture`` for ``pool``'s shape and classes, on ``device``."""
    return architecture.create().build(pool.input_shape, pool.num_classes).to(device)


def logits_key(model_key: str, indices: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]
    return stable_hash([model_key, digest])


class ModelAccess:
    """A trained model as attacks see it: its splits, cached logits and (white-box) module.

    ``members`` are the samples its defense treats as private training data and
    ``nonmembers`` its held-out split. ``excluded`` are the rest of its training
    split, carved out by a defense (AdvReg's and DMP's reference sets): neither
    members nor non-members (REFERENCE §1), so no attack may count them as either.
    """

    def __init__(
        self,
        store: Store,
        model_key: str,
        job: TrainJob,
        nonmembers: np.ndarray,
        device: torch.device,
        eval_batch_size: int = 1024,
        white_box: bool = True,
        train_split: np.ndarray | None = None,
    ) -> None:
        self.store = store
        self.key = model_key
        self.job = job
        self.device = device
        self.eval_batch_size = eval_batch_size
        self.white_box = white_box
        saved = store.load_torch("models", model_key)
        self.members: np.ndarray = saved["members"].numpy()
        self.nonmembers = np.asarray(nonmembers)
        split = self.members if train_split is None else np.asarray(train_split)
        self.excluded: np.ndarray = np.setdiff1d(split, self.members)
        self._state = saved["state_dict"]
        self._module: nn.Module | None = None
        self.info: dict[str, Any] = store.load_json("models", model_key)["info"]

    @property
    def pool(self) -> Pool:
        return load_pool(self.job.dataset)

    def module(self) -> nn.Module:
        """The network in eval mode on the run's device (white-box attacks only)."""
        if not self.white_box:
            raise PermissionError(f"model {self.key} gives black-box access only")
        return self._network()

    def _network(self) -> nn.Module:
        """The network, whatever the access (predictions need it even for a black-box model)."""
        if self._module is None:
            fresh = build_model(self.job.architecture, self.pool, self.device)
            model = self.job.defense.create().released_architecture(fresh)
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

    def labels(self, indices: np.ndarray) -> torch.Tensor:
        return self.pool.labels[torch.as_tensor(np.asarray(indices), dtype=torch.long)]


def open_model(store: Store, job: TrainJob, model_key: str, device: torch.device) -> ModelAccess:
    split = protocol(job.dataset, job.split_seed).split_for(job.role)
    return ModelAccess(
        store, model_key, job, split.nonmembers, device, job.training.eval_batch_size, job.defense.info.cls.white_box,
        train_split=split.members,
    )
