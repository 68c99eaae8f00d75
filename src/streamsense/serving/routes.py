"""The HTTP API's route templates, and the one a request path counts under.

Request metrics are labelled by template, never by the raw path: every distinct label
value is a time series Prometheus keeps, so a label taken from the path would let anyone
who can reach the port grow the server's memory and every scrape without bound
(issue #21). A path that matches no template counts as ``other``.
"""

from __future__ import annotations

import re

__all__ = ["OTHER", "ROUTES", "route_of"]

OTHER = "other"
ROUTES = (
    "/v1/decide/{stream}",
    "/v1/events/{stream}",
    "/v1/features/{view}/{key}",
    "/v1/models",
    "/v1/models/{name}/aliases/{alias}",
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{\w+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


_PATTERNS = tuple((_pattern(template), template) for template in ROUTES)


def route_of(path: str) -> str:
    """The template ``path`` matches, else ``other``."""
    for pattern, template in _PATTERNS:
        if pattern.fullmatch(path):
            return template
    return OTHER
