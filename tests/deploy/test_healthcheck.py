"""The image's HEALTHCHECK script (deploy/healthcheck.py, issue #20): it probes the API of
a `streamsense serve` container, on the port serve really listens on, and leaves workers
alone."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from .code_facts import serve_default_port
from .files import DEPLOY


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", DEPLOY / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_its_default_port_is_serves() -> None:
    assert serve_default_port() == _script().DEFAULT_PORT


def test_it_probes_the_api_where_it_listens() -> None:
    url = _script().health_url
    base = ["/usr/local/bin/python", "/usr/local/bin/streamsense", "serve", "apps/fraud"]
    assert url(base) == f"http://127.0.0.1:{serve_default_port()}/healthz"
    assert url([*base, "--host", "0.0.0.0", "--port", "8080"]) == "http://127.0.0.1:8080/healthz"
    assert url([*base, "--port=9000", "--host=10.0.0.5"]) == "http://10.0.0.5:9000/healthz"


def test_a_worker_has_nothing_to_probe() -> None:
    url = _script().health_url
    assert url(["python", "/usr/local/bin/streamsense", "run", "apps/fraud"]) is None
