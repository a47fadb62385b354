"""Stable reasons (google.rpc.ErrorInfo.reason) the backtest service gives.

Clients branch on these, so a value never changes once released. Each member says when
it is given and what the caller should do.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # No dataset with that id: see ListDatasets.
    DATASET_NOT_FOUND = "DATASET_NOT_FOUND"
    # The file is not a dataset of the format given; the violation names the first bad row.
    MALFORMED_DATASET = "MALFORMED_DATASET"
    # The exchange service did not give the candles asked for: retry later.
    EXCHANGE_UNAVAILABLE = "EXCHANGE_UNAVAILABLE"
    # No job with that id: see ListJobs.
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    # The job has finished (succeeded, failed or was cancelled): nothing to cancel.
    JOB_ALREADY_FINISHED = "JOB_ALREADY_FINISHED"
    # The job has not succeeded (yet): results exist once it has; see GetJob.
    JOB_NOT_SUCCEEDED = "JOB_NOT_SUCCEEDED"
    # A sweep keeps the trades and curve of its best runs only: ask for one of those.
    RUN_DETAILS_NOT_KEPT = "RUN_DETAILS_NOT_KEPT"
    # A worker for this job would pass the memory budget: retry when jobs finish, or
    # with a smaller dataset.
    WORKER_MEMORY_BUDGET = "WORKER_MEMORY_BUDGET"
    # [backtest.cluster] names a Dask scheduler that does not answer (and
    # fallback_to_local is off): start the scheduler, or retry later.
    CLUSTER_UNAVAILABLE = "CLUSTER_UNAVAILABLE"
