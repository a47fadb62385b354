"""Stable reasons (google.rpc.ErrorInfo.reason) the backtest service gives.

Clients branch on these, so a value never changes once released (see common/reasons.py).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # No job has that id: list the jobs (ListJobs) for the ids there are.
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    # CancelJob on a job that has already succeeded or failed: nothing to cancel.
    JOB_ALREADY_FINISHED = "JOB_ALREADY_FINISHED"
    # A worker for this dataset would not fit backtest.jobs.worker_budget_mib: use a
    # shorter dataset or raise the budget.
    WORKER_MEMORY_BUDGET = "WORKER_MEMORY_BUDGET"
    # [backtest.cluster] names a Dask scheduler that does not answer (and
    # fallback_to_local is off): start the scheduler, or retry later.
    CLUSTER_UNAVAILABLE = "CLUSTER_UNAVAILABLE"
