"""Every 4xx of the HTTP API has one shape (issue #21): ``{"error": why, "field": what}``,
where ``field`` names the part of the request that is wrong: a body field (``amount``,
``[3].amount``), a path parameter (``stream``, ``view``), a query parameter (``at``), or
the request itself (``path``, ``method``, ``authorization``, ``body``).

FastAPI's own answers (an unknown route, a method a route does not take, a parameter it
refuses) are rewritten to the same shape, so a client needs one error parser.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

__all__ = ["error_response", "install_error_handlers"]

_json = msgspec.json.Encoder()
# What a framework-made status is about, when it names no parameter itself.
_FIELD_OF_STATUS = {404: "path", 405: "method", 413: "body"}


def error_response(status: int, message: str, field_name: str | None = None) -> Response:
    body = {"error": message, **({"field": field_name} if field_name else {})}
    return Response(_json.encode(body), status, media_type="application/json")


def install_error_handlers(api: FastAPI) -> None:
    api.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    api.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]


async def _http_error(_: Request, error: HTTPException) -> Response:
    headers = getattr(error, "headers", None)
    answer = error_response(
        error.status_code, str(error.detail), _FIELD_OF_STATUS.get(error.status_code)
    )
    if headers:
        answer.headers.update(headers)  # e.g. Allow on a 405
    return answer


async def _invalid_request(_: Request, error: RequestValidationError) -> Response:
    problems: list[Any] = list(error.errors())
    first = problems[0] if problems else {}
    location = [str(part) for part in first.get("loc", ())]
    message = str(first.get("msg", "invalid request"))
    return error_response(422, message, location[-1] if location else "request")
