"""What deploy/compose.yaml must get right (issue #20), as a list of problems: empty when
the file is right. The tests run it on the real file and on broken copies of it."""

from __future__ import annotations

from typing import Any

from .brokers import bootstrap, kafka_url_problems, url_timeout_s
from .code_facts import environment_names
from .commands import command_problems
from .files import DEPLOY, ROOT

IMAGE_SERVICES = ("worker", "api", "train")  # run the streamsense image
NEEDED_ENV = {
    "worker": ("STREAMSENSE_BROKER", "STREAMSENSE_ONLINE_STORE"),
    "api": ("STREAMSENSE_BROKER", "STREAMSENSE_ONLINE_STORE", "STREAMSENSE_API_KEY"),
}


def compose_problems(compose: dict[str, Any]) -> list[str]:
    services: dict[str, Any] = compose.get("services", {})
    problems = [f"no service {name!r}" for name in IMAGE_SERVICES if name not in services]
    for name, service in services.items():
        problems += _dependency_problems(name, service, services)
        problems += _volume_problems(name, service, compose.get("volumes") or {})
    for name in IMAGE_SERVICES:
        if name in services:
            problems += _image_service_problems(name, services[name])
    if "worker" in services and "kafka" in services:
        problems += _kafka_problems(services["worker"], services["kafka"])
    return problems


def _dependency_problems(name: str, service: dict[str, Any], services: dict[str, Any]) -> list[str]:
    problems = []
    for other, condition in (service.get("depends_on") or {}).items():
        if other not in services:
            problems.append(f"{name} depends on {other!r}, which is no service")
        elif condition.get("condition") == "service_healthy" and not _has_healthcheck(
            services[other]
        ):
            problems.append(f"{name} waits for {other} to be healthy; it has no healthcheck")
    return problems


def _has_healthcheck(service: dict[str, Any]) -> bool:
    # The streamsense image brings its own HEALTHCHECK (deploy/Dockerfile).
    return "healthcheck" in service or "build" in service


def _volume_problems(name: str, service: dict[str, Any], declared: dict[str, Any]) -> list[str]:
    problems = []
    for volume in service.get("volumes") or []:
        source = volume.split(":")[0]
        if not source.startswith((".", "/", "~")) and source not in declared:
            problems.append(f"{name} mounts volume {source!r}, which is not declared")
    return problems


def _image_service_problems(name: str, service: dict[str, Any]) -> list[str]:
    problems = []
    build = service.get("build") or {}
    context = (DEPLOY / build.get("context", ".")).resolve()
    if context != ROOT or not (context / build.get("dockerfile", "Dockerfile")).exists():
        problems.append(f"{name}: builds from {context}, not the repository's deploy/Dockerfile")
    command = [str(part) for part in service.get("command") or []]
    problems += command_problems(command)
    env: dict[str, str] = {k: str(v) for k, v in (service.get("environment") or {}).items()}
    for variable in env:
        if variable not in environment_names():
            problems.append(f"{name}: ${variable} is read nowhere in the code")
    for variable in NEEDED_ENV.get(name, ()):
        if variable not in env:
            problems.append(f"{name}: ${variable} is not set")
    if "STREAMSENSE_BROKER" in env:
        problems += kafka_url_problems(env["STREAMSENSE_BROKER"], exactly_once=name == "worker")
    store = env.get("STREAMSENSE_ONLINE_STORE", "")
    if name in NEEDED_ENV and not store.startswith("redis://redis:"):
        problems.append(f"{name}: online store {store!r} is not the redis service")
    if name == "worker":
        grace = _seconds(service.get("stop_grace_period", "10s"))
        timeout = url_timeout_s(env.get("STREAMSENSE_BROKER", ""))
        if grace <= timeout:
            problems.append(f"worker: stop_grace_period {grace:g} s <= transaction timeout")
    return problems


def _kafka_problems(worker: dict[str, Any], kafka: dict[str, Any]) -> list[str]:
    """The workers' bootstrap address is one the broker advertises."""
    url = str((worker.get("environment") or {}).get("STREAMSENSE_BROKER", ""))
    advertised = str((kafka.get("environment") or {}).get("KAFKA_ADVERTISED_LISTENERS", ""))
    listeners = {entry.partition("://")[2] for entry in advertised.split(",")}
    if bootstrap(url) not in listeners:
        return [f"workers bootstrap from {bootstrap(url)}; kafka advertises {advertised}"]
    return []


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    return float(duration)
