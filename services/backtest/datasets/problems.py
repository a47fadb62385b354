"""What a dataset import reports back: numpy-free, so the server can catch it without
loading what the import needs."""

from __future__ import annotations


class MalformedDataset(ValueError):
    """The file is not a valid dataset: fix the named problem and import again.

    Plain (no gRPC) so that it crosses from the import process; the server turns it into
    INVALID_ARGUMENT with a violation on `field`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field = field
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"
