"""BacktestService: translates each RPC to the backtest domain and back.

One method per RPC, named as in protos/edgequant/backtest/v1/backtest.proto. Messages
convert in convert.py; ImportDataset's decisions are datasets/intake.py's, SubmitBacktest's
checks submission.py's, result reads results.py's; jobs (workers, progress, results) live
in jobs/, engines in bars/ and tick/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from common import paging
from common.service import Context
from common.validation import Violations
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.backtest.v1 import backtest_pb2_grpc
from services.backtest import convert
from services.backtest.datasets import candle_pages
from services.backtest.datasets.intake import DatasetIntakes
from services.backtest.datasets.store import DatasetStore
from services.backtest.jobs import manager as jobs
from services.backtest.results import ResultReader
from services.backtest.strategies.catalog import StrategyCatalog
from services.backtest.submission import Submitter
from services.backtest.tick.strategies import TICK_STRATEGIES


class BacktestServicer(backtest_pb2_grpc.BacktestServiceServicer):
    def __init__(
        self,
        catalog: StrategyCatalog,
        datasets: DatasetStore,
        intakes: DatasetIntakes,
        manager: jobs.JobManager,
    ) -> None:
        self.catalog = catalog
        self.datasets = datasets
        self.intakes = intakes
        self.jobs = manager
        self.submitter = Submitter(catalog, datasets, manager)
        self.results = ResultReader(manager)

    async def ListStrategies(
        self, request: pb.ListStrategiesRequest, context: Context
    ) -> pb.ListStrategiesResponse:
        return pb.ListStrategiesResponse(
            strategies=[convert.strategy(s, "bar") for s in self.catalog]
            + [convert.strategy(s, "tick") for s in TICK_STRATEGIES.values()]
        )

    async def ImportDataset(
        self, request: pb.ImportDatasetRequest, context: Context
    ) -> pb.ImportDatasetResponse:
        problems = Violations()
        intake = convert.dataset_intake(request, problems)
        problems.raise_if_any()
        taken = await self.intakes.take(intake)
        response = pb.ImportDatasetResponse(
            upload_id=taken.upload_id, received_bytes=taken.received_bytes
        )
        if taken.dataset is not None:
            response.dataset.CopyFrom(convert.dataset(taken.dataset))
        return response

    async def ListDatasets(
        self, request: pb.ListDatasetsRequest, context: Context
    ) -> pb.ListDatasetsResponse:
        page = _page(request.page_size, request.page_token, convert.DATASETS_PAGE)
        datasets = await self.datasets.page(page.offset, page.size)
        return pb.ListDatasetsResponse(
            datasets=[convert.dataset(d) for d in datasets],
            next_page_token=paging.offset_token(convert.DATASETS_PAGE, page, len(datasets)),
        )

    async def ListDatasetCandles(
        self, request: pb.ListDatasetCandlesRequest, context: Context
    ) -> pb.ListDatasetCandlesResponse:
        query = convert.candle_query(request)
        return convert.candle_page(query, await candle_pages.list_candles(self.datasets, query))

    async def DeleteDataset(
        self, request: pb.DeleteDatasetRequest, context: Context
    ) -> pb.DeleteDatasetResponse:
        await self.datasets.delete(request.dataset_id)
        return pb.DeleteDatasetResponse()

    async def SubmitBacktest(
        self, request: pb.SubmitBacktestRequest, context: Context
    ) -> pb.SubmitBacktestResponse:
        problems = Violations()
        submission = convert.submission(request, problems)
        job = await self.submitter.submit(submission, problems)
        return pb.SubmitBacktestResponse(job=convert.job(job))

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=convert.job(await self.jobs.get(request.job_id)))

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        problems = Violations()
        page = paging.read_offset_page(
            request.page_size, request.page_token, kind=convert.JOBS_PAGE, problems=problems
        )
        states = convert.job_states(request.states, problems)
        problems.raise_if_any()
        rows = await self.jobs.page(states, page.offset, page.size)
        return pb.ListJobsResponse(
            jobs=[convert.job(row) for row in rows],
            next_page_token=paging.offset_token(convert.JOBS_PAGE, page, len(rows)),
        )

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: Context
    ) -> pb.CancelJobResponse:
        return pb.CancelJobResponse(job=convert.job(await self.jobs.cancel(request.job_id)))

    async def StreamJob(
        self, request: pb.StreamJobRequest, context: Context
    ) -> AsyncIterator[pb.StreamJobResponse]:
        async for row in self.jobs.watch(request.job_id):
            yield pb.StreamJobResponse(progress=convert.job(row))
            if row.state == jobs.SUCCEEDED:
                first_page = paging.Page(paging.DEFAULT_PAGE_SIZE)
                result = await self.results.result(row, 0, first_page, 0)
                yield pb.StreamJobResponse(result=convert.result(result))

    async def GetResult(
        self, request: pb.GetResultRequest, context: Context
    ) -> pb.GetResultResponse:
        problems = Violations()
        page = paging.read_offset_page(
            request.page_size, request.page_token, kind=convert.TRADES_PAGE, problems=problems
        )
        problems.require(
            request.max_equity_points >= 0, "max_equity_points", "must not be negative"
        )
        problems.raise_if_any()
        job = await self.jobs.get(request.job_id)
        result = await self.results.result(job, request.run_index, page, request.max_equity_points)
        return convert.result(result)

    async def ExportResult(
        self, request: pb.ExportResultRequest, context: Context
    ) -> pb.ExportResultResponse:
        problems = Violations()
        table = convert.export_table(request.table, problems)
        problems.raise_if_any()
        job = await self.jobs.get(request.job_id)
        export = await self.results.export(job, request.run_index, table)
        return pb.ExportResultResponse(
            content_type="text/csv", file_name=export.file_name, csv=export.csv, rows=export.rows
        )


def _page(page_size: int, page_token: str, kind: str) -> paging.Page:
    problems = Violations()
    page = paging.read_offset_page(page_size, page_token, kind=kind, problems=problems)
    problems.raise_if_any()
    return page
