"""The grid's ``execution:`` block: which executor runs the jobs, on which devices, how wide.

The same settings come as ``mibench run`` options; the command line wins.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mibench.sdk.training_config import StrictModel


class ExecutionConfig(StrictModel):
    executor: Literal["auto", "serial", "local", "ray"] = Field(
        "auto", description="serial: one job at a time in this process; local: worker processes on this machine; "
        "ray: Ray tasks on a cluster; auto: local on a machine with several cores or GPUs, else serial.")
    workers: int | None = Field(None, ge=1, le=1024, description="Worker processes (local) or parallel tasks (ray); "
                                "default: one per GPU x jobs_per_device, or cores / threads_per_job on a CPU.")
    devices: str | None = Field(None, pattern=r"^(cpu|cuda|cuda:\d+(,cuda:\d+)*)$",
                                description="cpu, cuda (every GPU) or cuda:0,cuda:1,...; default from the grid's device.")
    jobs_per_device: int = Field(1, ge=1, le=64, description="Jobs run at once on one GPU.")
    threads_per_job: int | None = Field(None, ge=1, le=1024,
                                        description="CPU threads per job (default: 1 on a CPU-only machine, else "
                                        "cores / workers). Model bytes depend on it, so it is recorded.")
    ray_address: str | None = Field(None, description="Address of an existing Ray cluster; none: start a local one.")
    max_retries: int = Field(2, ge=0, le=100, description="Times a job is run again after its worker died.")

    @field_validator("ray_address")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None
