"""What the HTTP API shows besides ``/v1``, and to whom (issue #21).

Defaults (``Exposure()``, what ``streamsense serve`` uses):

- ``/metrics`` needs the API key when one is set (``metrics="key"``): Prometheus sends it
  as ``authorization: {type: Bearer, credentials: ...}`` in its scrape config. ``"public"``
  answers anyone, ``"off"`` removes the route; ``serve --metrics-port`` serves the metrics
  on a bind address of their own instead (``serve_metrics``) and turns the route off.
- ``/docs``, ``/redoc`` and ``/openapi.json`` are on; ``Exposure.production()``
  (``serve --production``) turns them off, so a public port tells nobody the API's shape.

``/healthz`` and ``/readyz`` always answer anyone: load balancers probe them without keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

__all__ = ["Exposure", "MetricsAccess", "MetricsServer", "serve_metrics"]

MetricsAccess = Literal["public", "key", "off"]


@dataclass(frozen=True)
class Exposure:
    """Who sees ``/metrics`` on the API port, and whether the API documents itself."""

    metrics: MetricsAccess = "key"
    docs: bool = True

    @classmethod
    def production(cls, metrics: MetricsAccess = "key") -> Exposure:
        return cls(metrics=metrics, docs=False)


@dataclass
class MetricsServer:
    """``/metrics`` on a bind address of its own (a thread of the serving process)."""

    host: str
    port: int
    _server: WSGIServer

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serves ``registry`` on http://host:port/metrics (port 0: any free port)."""
    server, _ = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(host, int(server.server_port), server)
