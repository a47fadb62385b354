from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2

from common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    internal_status,
    not_yet_implemented,
    to_status,
)


def _unpack_error_info(status: object) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:  # type: ignore[attr-defined]
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
    return info


def test_domain_error_carries_code_reason_and_metadata() -> None:
    error = FailedPrecondition(
        "not enough USDT", reason="INSUFFICIENT_FUNDS", metadata={"asset": "USDT"}
    )
    status = to_status(error)
    assert status.code == code_pb2.FAILED_PRECONDITION
    assert status.message == "not enough USDT"
    info = _unpack_error_info(status)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "INSUFFICIENT_FUNDS",
        "edgequant",
        {"asset": "USDT"},
    )


def test_invalid_argument_lists_field_violations() -> None:
    error = InvalidArgument(
        [FieldViolation("quantity", "must be greater than 0"), FieldViolation("symbol", "unknown")]
    )
    status = to_status(error)
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("quantity", "must be greater than 0"),
        ("symbol", "unknown"),
    ]


def test_grpc_codes_and_proto_codes_agree() -> None:
    assert to_status(InvalidArgument([])).code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_internal_status_says_nothing_of_the_failure() -> None:
    status = internal_status()
    assert status.code == code_pb2.INTERNAL
    assert status.message == "internal error"
    assert _unpack_error_info(status).reason == "INTERNAL"


def test_not_yet_implemented_names_the_issue() -> None:
    error = not_yet_implemented("RiskService.CheckOrder", 5)
    assert error.code == grpc.StatusCode.UNIMPLEMENTED
    assert error.metadata == {"rpc": "RiskService.CheckOrder", "issue": "5"}
