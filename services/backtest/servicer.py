"""BacktestService: translates each RPC to the backtest domain and back.

One method per RPC, named as in protos/edgequant/backtest/v1/backtest.proto. Until issue
#6 lands, every RPC answers UNIMPLEMENTED with reason NOT_YET_IMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from common.errors import not_yet_implemented, not_yet_implemented_stream
from common.service import Context, Runtime
from edgequant.backtest.v1 import backtest_pb2_grpc
from edgequant.backtest.v1.backtest_pb2 import (
    CancelJobRequest,
    CancelJobResponse,
    DeleteDatasetRequest,
    DeleteDatasetResponse,
    GetJobRequest,
    GetJobResponse,
    GetResultRequest,
    GetResultResponse,
    ImportDatasetRequest,
    ImportDatasetResponse,
    ListDatasetsRequest,
    ListDatasetsResponse,
    ListJobsRequest,
    ListJobsResponse,
    ListStrategiesRequest,
    ListStrategiesResponse,
    StreamJobRequest,
    StreamJobResponse,
    SubmitBacktestRequest,
    SubmitBacktestResponse,
)


class BacktestServicer(backtest_pb2_grpc.BacktestServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def ListStrategies(
        self, request: ListStrategiesRequest, context: Context
    ) -> ListStrategiesResponse:
        raise not_yet_implemented("BacktestService.ListStrategies", 6)

    async def ImportDataset(
        self, request: ImportDatasetRequest, context: Context
    ) -> ImportDatasetResponse:
        raise not_yet_implemented("BacktestService.ImportDataset", 6)

    async def ListDatasets(
        self, request: ListDatasetsRequest, context: Context
    ) -> ListDatasetsResponse:
        raise not_yet_implemented("BacktestService.ListDatasets", 6)

    async def DeleteDataset(
        self, request: DeleteDatasetRequest, context: Context
    ) -> DeleteDatasetResponse:
        raise not_yet_implemented("BacktestService.DeleteDataset", 6)

    async def SubmitBacktest(
        self, request: SubmitBacktestRequest, context: Context
    ) -> SubmitBacktestResponse:
        raise not_yet_implemented("BacktestService.SubmitBacktest", 6)

    async def GetJob(self, request: GetJobRequest, context: Context) -> GetJobResponse:
        raise not_yet_implemented("BacktestService.GetJob", 6)

    async def ListJobs(self, request: ListJobsRequest, context: Context) -> ListJobsResponse:
        raise not_yet_implemented("BacktestService.ListJobs", 6)

    async def CancelJob(self, request: CancelJobRequest, context: Context) -> CancelJobResponse:
        raise not_yet_implemented("BacktestService.CancelJob", 6)

    def StreamJob(
        self, request: StreamJobRequest, context: Context
    ) -> AsyncIterator[StreamJobResponse]:
        return not_yet_implemented_stream("BacktestService.StreamJob", 6)

    async def GetResult(self, request: GetResultRequest, context: Context) -> GetResultResponse:
        raise not_yet_implemented("BacktestService.GetResult", 6)
