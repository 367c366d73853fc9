"""What each job leaves in the store beside its output: a typed record, the proof that it is done.

A job is done when its record is in the store, intact, and so are the outputs the
record names. A resumed run reads records and runs nothing that is done; the result
rows are built from records and stored scores alone, so building them loads no model.
Records are plain frozen dataclasses: picklable for worker processes, written as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from mibench.engine.store import Store


@dataclass(frozen=True)
class Record:
    """Base of the job records; ``kind`` names the job kind that writes it."""

    kind: ClassVar[str] = "job"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Record":
        names = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**values)


@dataclass(frozen=True)
class SplitsRecord(Record):
    """A dataset's protocol splits, saved under ``splits/<key>``."""

    kind: ClassVar[str] = "splits"
    pool_size: int


@dataclass(frozen=True)
class TrainRecord(Record):
    """A training run's released models (``models/<key>``); ``trained``: in this run, not found stored."""

    kind: ClassVar[str] = "train"
    model_keys: tuple[str, ...]
    seconds: float = 0.0
    threads: int = 0
    trained: bool = False


@dataclass(frozen=True)
class PredictRecord(Record):
    """A model's logits on the whole pool, in pool order (``predictions/<logits>``), and its accuracies."""

    kind: ClassVar[str] = "predict"
    model_key: str
    logits: str
    train_acc: float
    test_acc: float
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackRecord(Record):
    """An attack's scores against one target (``attacks/<output>``), its threshold mode and info."""

    kind: ClassVar[str] = "attack"
    output: str
    threshold_mode: str
    n_members: int
    n_nonmembers: int
    info: dict[str, Any] = field(default_factory=dict)


RECORDS = {cls.kind: cls for cls in (SplitsRecord, TrainRecord, PredictRecord, AttackRecord)}


def record_key(job_key: str) -> str:
    """The store key of a job's record ("train:abc" -> "train-abc")."""
    return job_key.replace(":", "-")


def save_record(store: Store, job_key: str, record: Record) -> Record:
    store.save_json("records", record_key(job_key), {"kind": record.kind, **record.to_json()})
    return record


def load_record(store: Store, job_key: str) -> Record | None:
    """The job's record if it is in the store and intact (a damaged one is quarantined), else None."""
    key = record_key(job_key)
    if not store.has("records", key, "json"):
        return None
    data = store.load_json("records", key)
    cls = RECORDS.get(data.pop("kind", None))
    if cls is None:
        return None
    try:
        return cls.from_json(data)
    except TypeError:  # a record of an older shape: the job runs again
        return None
