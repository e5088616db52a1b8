"""Structured logging shared by every function, with no third-party import (the stream processor uses it too).

Lambda's JSON log format turns each ``logging`` record into one JSON object and copies the record's extra
attributes into it, so ``log_event(logger, logging.ERROR, "dynamodb call failed", error_code=...)`` arrives in
CloudWatch as ``{"level": "ERROR", "message": "dynamodb call failed", "error_code": ..., "requestId": ...}``.
``JsonFormatter`` renders the same shape where no Lambda runtime configured logging (tests, the local site).
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import datetime, timezone
from typing import Any

VISIT_COUNTED_MESSAGE = "visit counted"
"""The one log line of a counted visit (``functions.counting``). The stack counts these lines into its visits metric
(``components.alarms``); nothing else is logged with this message."""

# LogRecord's own attributes: never copied into the JSON object, never usable as field names.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "aws_request_id"}


def get_logger(name: str) -> logging.Logger:
    """The logger for one module; INFO and above, so errors and skipped records always reach the log."""
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger


def log_event(
    logger: logging.Logger,
    level: int,
    message: str,
    *,
    exc_info: bool | BaseException = False,
    **fields: Any,
) -> None:
    """Log ``message`` with ``fields`` as top-level JSON keys (names that clash with LogRecord get a ``_`` suffix)."""
    extra = {(f"{key}_" if key in _RECORD_ATTRIBUTES else key): value for key, value in fields.items()}
    logger.log(level, message, extra=extra, exc_info=exc_info)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a record carries beyond the standard ones (what Lambda's JSON format adds)."""
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, shaped like Lambda's JSON log format, for logs outside Lambda."""

    def format(self, record: logging.LogRecord) -> str:
        timestamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
        result: dict[str, Any] = {
            "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info and record.exc_info[0] is not None:
            result["errorType"] = record.exc_info[0].__name__
            result["errorMessage"] = str(record.exc_info[1])
            result["stackTrace"] = traceback.format_tb(record.exc_info[2])
        for key, value in record_fields(record).items():
            result.setdefault(key, value)
        return json.dumps(result, ensure_ascii=False, default=str)
