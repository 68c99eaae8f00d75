"""deploy/Dockerfile and .dockerignore (issue #20), read instruction by instruction: the
image cannot be built here (no Docker engine), so these are its offline checks, each shown
to fail on a broken copy."""

from __future__ import annotations

import pytest

from .dockerfile_checks import dockerfile_problems
from .files import DOCKERFILE, DOCKERIGNORE, dockerfile, dockerignore_patterns


def test_the_dockerfile_is_right() -> None:
    assert dockerfile_problems(dockerfile(), dockerignore_patterns()) == []


BREAKAGES = {
    "one stage": ("FROM python:${PYTHON_VERSION}-slim AS runtime", "", "multi-stage"),
    "extra that does not exist": ('"streamsense[all]"', '"streamsense[all,gpu]"', "'gpu'"),
    "not all extras": ('"streamsense[all]"', '"streamsense[kafka]"', "streamsense[all]"),
    "from the index": ("--no-index ", "", "only the build stage's wheels"),
    "root": ("USER 10001:10001", "USER root", "non-root"),
    "no user": ("USER 10001:10001", "", "runs as root"),
    "other entry point": ('ENTRYPOINT ["streamsense"]', 'ENTRYPOINT ["python"]', "ENTRYPOINT"),
    "no apps": ("COPY apps ./apps", "", "apps folder"),
    "no healthcheck": ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "HEALTHCHECK"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_dockerfile_fails(breakage: str) -> None:
    old, new, expected = BREAKAGES[breakage]
    text = DOCKERFILE.read_text()
    assert old in text, old
    problems = dockerfile_problems(dockerfile(text.replace(old, new, 1)), dockerignore_patterns())
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("!src/\n", "", "src/streamsense/__init__.py is needed"),
        ("apps/*/tests\n", "", "apps/fraud/tests/test_tuning.py would be sent"),
        ("*\n", "", ".venv/bin/python would be sent"),
    ],
)
def test_a_broken_dockerignore_fails(old: str, new: str, expected: str) -> None:
    text = DOCKERIGNORE.read_text()
    assert old in text, old
    patterns = dockerignore_patterns(text.replace(old, new, 1))
    problems = dockerfile_problems(dockerfile(), patterns)
    assert any(expected in problem for problem in problems), problems
