"""The HTTP API of `streamsense recs serve` (FastAPI; msgspec encodes the answers).

GET  /v1/recommend/{user}?k=20     the list, reasons, degraded flag
POST /v1/events/interactions       {"userId", "movieId", "rating", "timestamp"}: the
                                   next answer for that user includes it
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response

from streamsense.errors import InvalidEvent

from .serving import RecsService

_encode = msgspec.json.Encoder().encode


def create_api(service: RecsService) -> Any:
    api = FastAPI(title="streamsense recs")

    @api.get("/v1/ready")
    async def ready() -> Response:
        """200 once the model has every interaction the broker held at start, else 503
        (answers given before that come from a model still catching up)."""
        status = 200 if service.caught_up.is_set() else 503
        return Response(_encode({"ready": status == 200}), status_code=status)

    # async: the ranking is a ~0.1 ms compiled call, cheaper than a hop to the thread pool
    @api.get("/v1/recommend/{user}")
    async def recommend(user: int, k: int = 20) -> Response:
        if not 1 <= k <= 200:
            return _error(422, "k", "k must be between 1 and 200")
        return Response(_encode(service.recommend(user, k)), media_type="application/json")

    @api.post("/v1/events/interactions")
    async def interaction(request: Request) -> Response:
        body = await request.body()
        try:
            service.post(body)
        except InvalidEvent as error:
            return _error(422, error.field or "", str(error))
        except msgspec.DecodeError as error:
            return _error(400, "", f"not JSON: {error}")
        return Response(b'{"accepted":true}', status_code=202, media_type="application/json")

    return api


def _error(status: int, field: str, message: str) -> Response:
    body = _encode({"error": message, "field": field})
    return Response(body, status_code=status, media_type="application/json")
