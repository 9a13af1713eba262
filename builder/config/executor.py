"""The recipe's `executor:` section: how datatrove pipelines run (builder/executors.py builds them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from builder.config.base import Strict
from builder.cpus import usable_cores


class ExecutorConfig(Strict):
    """How to run datatrove pipelines (the recipe's `executor:` block)."""

    kind: Literal["local", "slurm", "ray"] = Field("local", description="local processes, a Slurm array, or Ray")
    tasks: int = Field(4, ge=1, le=100_000, description="tasks for the parallel steps (files are split across them)")
    workers: int = Field(-1, ge=-1, description="tasks run at once; -1 = all")
    skip_completed: bool = Field(True, description="resume: skip ranks whose completion marker exists")
    start_method: Literal["forkserver", "spawn", "fork"] = Field("forkserver", description="local: process start method")
    partition: str | None = Field(None, description="slurm: the partition to submit to (required for slurm)")
    time: str = Field("04:00:00", description="slurm: time limit per task")
    cpus_per_task: int = Field(1, ge=1, description="slurm/ray: CPUs per task")
    mem_per_cpu_gb: float = Field(2, gt=0, description="slurm/ray: memory per CPU in GB")
    qos: str = Field("normal", description="slurm: quality of service")
    sbatch_args: dict[str, str] = Field(default_factory=dict, description="slurm: extra sbatch arguments")
    venv_path: str | None = Field(None, description="slurm: `source`d before the task, e.g. .venv/bin/activate")
    poll_s: float = Field(30, gt=0, description="slurm: how often to check for finished ranks")
    address: str | None = Field(None, description="ray: cluster address; None starts/joins a local instance")

    @model_validator(mode="after")
    def _slurm(self) -> ExecutorConfig:
        if self.kind == "slurm" and not self.partition:
            raise ValueError("executor.kind=slurm needs `partition` (the Slurm partition to submit to)")
        if self.workers == 0:
            raise ValueError("workers must be ≥ 1, or -1 for all tasks at once")
        return self

    def workers_for(self, tasks: int) -> int:
        """Tasks run at once. Local runs never start more processes than the machine has cores:
        20 MinHash bucket tasks at once on 2 cores only multiply memory (measured 7.9 GB)."""
        n = tasks if self.workers == -1 else max(1, min(self.workers, tasks))
        if self.kind == "local":
            n = min(n, usable_cores())
        return n
