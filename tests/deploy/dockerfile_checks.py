"""What deploy/Dockerfile and .dockerignore must get right (issue #20), as a list of
problems: empty when they are right. No Docker engine runs where this is developed, so
the image is never built here; these are the checks that can be made without one."""

from __future__ import annotations

import re
import tomllib

from .files import ROOT, Instruction, dockerignored

# What the image needs from the build context (COPY sources) and what it must not get.
NEEDED = ("pyproject.toml", "README.md", "src/streamsense/__init__.py", "apps/fraud/app.py")
LEFT_OUT = (".venv/bin/python", ".git/HEAD", "apps/fraud/tests/test_tuning.py", "bench/run_all.py")
_INSTALL = re.compile(r"pip install .*?\"?streamsense\[(?P<extras>[\w,]+)\]\"?")


def dockerfile_problems(instructions: list[Instruction], ignore: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    stages = [i for i in instructions if i.keyword == "FROM"]
    last = len(stages) - 1
    final = [i for i in instructions if i.stage == last]
    problems = []
    if len(stages) < 2:
        problems.append("not multi-stage: a build stage and a runtime stage are needed")
    build_names = [s.arguments.split(" AS ")[-1] for s in stages[:-1] if " AS " in s.arguments]
    runs = " ".join(i.arguments for i in instructions if i.keyword == "RUN" and i.stage < last)
    if "pip wheel" not in runs:
        problems.append("no build stage makes a wheel (pip wheel)")
    installs = [m for i in final if i.keyword == "RUN" for m in _INSTALL.finditer(i.arguments)]
    if not installs:
        problems.append("the runtime stage does not pip install streamsense[...]")
    for install in installs:
        extras = install["extras"].split(",")
        unknown = set(extras) - set(project["optional-dependencies"])
        problems += [f"extra {e!r} is not in pyproject.toml" for e in sorted(unknown)]
        if "all" not in extras:
            problems.append("the image should install streamsense[all]")
        if "--no-index" not in install.string or not any(
            f"from={name}" in install.string for name in build_names
        ):
            problems.append("the runtime stage must install only the build stage's wheels")
    problems += _user_problems(final)
    problems += _entry_problems(final, project)
    problems += _context_problems(instructions, ignore)
    return problems


def _user_problems(final: list[Instruction]) -> list[str]:
    users = [i.arguments for i in final if i.keyword == "USER"]
    if not users:
        return ["the runtime stage runs as root (no USER)"]
    user = users[-1].split(":")[0]
    if not user.isdigit() or int(user) == 0:
        return [f"USER {users[-1]}: a numeric non-root id (Kubernetes' runAsNonRoot checks it)"]
    return []


def _entry_problems(final: list[Instruction], project: dict[str, object]) -> list[str]:
    problems = []
    scripts = project["scripts"]
    assert isinstance(scripts, dict)
    entry = [i.exec_form() for i in final if i.keyword == "ENTRYPOINT"]
    if not entry or entry[-1][0] not in scripts:
        problems.append(f"ENTRYPOINT should be the project's script, one of {sorted(scripts)}")
    workdir = [i.arguments for i in final if i.keyword == "WORKDIR"]
    copies = [i.arguments.split() for i in final if i.keyword == "COPY"]
    if not workdir or ["apps", "./apps"] not in [c[-2:] for c in copies]:
        problems.append("the apps folder must be copied to ./apps of the WORKDIR")
    checks = [i for i in final if i.keyword == "HEALTHCHECK"]
    if not checks:
        problems.append("no HEALTHCHECK")
    for check in checks:
        script = check.arguments.partition("CMD ")[2]
        targets = [c[-1] for c in copies]
        if not any(target in script for target in targets):
            problems.append(f"HEALTHCHECK runs {script}, which no COPY puts in the image")
    return problems


def _context_problems(instructions: list[Instruction], ignore: list[str]) -> list[str]:
    problems = []
    sources = [
        part
        for i in instructions
        if i.keyword == "COPY" and "--from" not in i.arguments
        for part in i.arguments.split()[:-1]
        if not part.startswith("--")
    ]
    for path in [*sources, *NEEDED]:
        if dockerignored(path, ignore):
            problems.append(f"{path} is needed by the image but .dockerignore leaves it out")
    for path in LEFT_OUT:
        if not dockerignored(path, ignore):
            problems.append(f"{path} would be sent to the build: .dockerignore should leave it out")
    return problems
