"""`Journal`: the job records of one run of an execution, on their way to the
execution log."""

from __future__ import annotations

from engine.records import Job
from engine.redaction import SecretMask
from store.executions import ExecutionLog


class Journal:
    """The job records of one run. Kept here and written together with the
    execution's final state (one Redis call for a short run); a run long enough
    to be shown as STARTED also writes each job as it changes. Those writes are
    not awaited (progress marks), so the final write carries every job of the
    run again: a mark lost to a Redis hiccup never loses a job. What is stored
    never holds an `$env` value (`mask`)."""

    def __init__(self, log: ExecutionLog, mask: SecretMask) -> None:
        self.log = log
        self.mask = mask
        self.pending: dict[str, Job] = {}
        self.live = False

    def record(self, job: Job) -> None:
        job = self.mask.job(job)
        self.pending[job.id] = job
        if self.live:
            self.log.save_job(job)

    def go_live(self) -> None:
        self.live = True
        for job in self.pending.values():
            self.log.save_job(job)

    def take(self) -> list[Job]:
        jobs = list(self.pending.values())
        self.pending.clear()
        return jobs
