"""Serving's domain and the pipeline runtime load without FastAPI, uvicorn or grpc: a
pipeline worker refers to ``Serving`` and the decision types but never serves HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import streamsense.serving

BLOCK_WEB_FRAMEWORKS = """
import sys
for name in ("fastapi", "starlette", "uvicorn", "grpc"):
    sys.modules[name] = None  # any import of them now raises ImportError
import streamsense.runtime.worker
import streamsense.serving.decide
import streamsense.serving.request_reply
from streamsense.serving import (
    DECIDED_BY_API, Cascade, CascadeConfig, DecisionRecord, ReplySink, Serving,
)
"""


def test_serving_domain_and_runtime_import_without_web_frameworks() -> None:
    # The child imports the very streamsense this test runs against.
    source = str(Path(streamsense.serving.__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": source}
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_WEB_FRAMEWORKS],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr


def test_serving_exports_its_domain_objects() -> None:
    wanted = {"DECIDED_BY_API", "Cascade", "CascadeConfig", "DecisionRecord", "ReplySink"}
    assert wanted | {"Serving"} <= set(streamsense.serving.__all__)
    for name in streamsense.serving.__all__:
        assert hasattr(streamsense.serving, name), name
