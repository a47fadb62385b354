from __future__ import annotations

import json
import logging

from common.logs import JsonFormatter, request_id


def _format(record: logging.LogRecord) -> dict[str, object]:
    return dict(json.loads(JsonFormatter("risk").format(record)))


def test_one_json_object_with_service_and_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "edgequant.server", "levelname": "INFO", "msg": "serving %s", "args": ("now",)}
    )
    record.address = "127.0.0.1:50053"
    entry = _format(record)
    assert entry["service"] == "risk"
    assert entry["message"] == "serving now"
    assert entry["address"] == "127.0.0.1:50053"
    assert "request_id" not in entry


def test_request_id_of_the_current_rpc_is_included() -> None:
    token = request_id.set("req-7")
    try:
        entry = _format(logging.makeLogRecord({"msg": "checked"}))
    finally:
        request_id.reset(token)
    assert entry["request_id"] == "req-7"
