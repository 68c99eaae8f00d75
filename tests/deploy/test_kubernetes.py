"""deploy/k8s (issue #20), built by `kubectl kustomize` as `kubectl apply -k` would send it:
Kubernetes objects against Kubernetes' schemas (kubernetes-validate, strict), the KEDA
ScaledObject against KEDA's documented fields and against the group, topics and
partitions the runtime really uses, the containers' commands against the real CLI. The
broken copies below show each check fails when it should."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from .files import K8S, kustomize
from .k8s_checks import k8s_problems


def test_the_manifests_are_right() -> None:
    assert k8s_problems(kustomize(K8S)) == []


def test_every_manifest_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert files == listed  # a file left out would be neither applied nor checked


def test_the_api_key_is_generated_from_a_file_not_in_git() -> None:
    objects = kustomize(K8S, api_key="s3cret")
    secrets = [o for o in objects if o["kind"] == "Secret"]
    assert [s["metadata"]["name"].startswith("streamsense-api-key-") for s in secrets] == [True]
    assert "api-key.env" in (K8S / ".gitignore").read_text().split()


BREAKAGES = {
    "renamed option": (
        "worker.yaml",
        "- --session-timeout-ms",
        "- --session-timeout",
        "No such option",
    ),
    "misspelt field": ("api.yaml", "readinessProbe:", "readinesProbe:", "readinesProbe"),
    "other consumer group": (
        "worker-scaledobject.yaml",
        "consumerGroup: fraud",
        "consumerGroup: fraud-workers",
        "not the app's group",
    ),
    "more replicas than partitions": (
        "worker-scaledobject.yaml",
        "maxReplicaCount: 1",
        "maxReplicaCount: 4",
        "partitions",
    ),
    "topic the app does not read": (
        "worker-scaledobject.yaml",
        "topic: labels",
        "topic: label",
        "the app reads",
    ),
    "unknown KEDA field": (
        "worker-scaledobject.yaml",
        'lagThreshold: "10000"',
        'lagTreshold: "10000"',
        "lagTreshold",
    ),
    "KEDA number unquoted": (
        "worker-scaledobject.yaml",
        'lagThreshold: "10000"',
        "lagThreshold: 10000",
        "lagThreshold",
    ),
    "activation on commit markers": (
        "worker-scaledobject.yaml",
        'activationLagThreshold: "100"',
        'activationLagThreshold: "1"',
        "an idle group's lag",
    ),
    "min above max": (
        "worker-scaledobject.yaml",
        "minReplicaCount: 1",
        "minReplicaCount: 2",
        "above maxReplicaCount",
    ),
    "readiness on no route": (
        "api.yaml",
        "path: /readyz",
        "path: /ready",
        "readinessProbe should GET /readyz",
    ),
    "grace under the timeout": (
        "worker.yaml",
        "terminationGracePeriodSeconds: 90",
        "terminationGracePeriodSeconds: 30",
        "transaction timeout",
    ),
    "root user": ("worker.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "non-root"),
    "writable root": (
        "api.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
        "read-only",
    ),
    "shared transactional id": (
        "worker.yaml",
        "&transactional_id=$(POD_NAME)",
        "",
        "transactional id",
    ),
    "broker URL option": (
        "worker.yaml",
        "exactly_once=true",
        "exactly_once=yes&acks=1",
        "unknown kafka URL option",
    ),
    "service port the pods lack": (
        "api.yaml",
        "targetPort: metrics",
        "targetPort: prometheus",
        "'prometheus'",
    ),
    "other Kafka for KEDA": (
        "kustomization.yaml",
        "fieldPath: data.KAFKA_BOOTSTRAP",
        "fieldPath: metadata.name",
        "not the workers' Kafka",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_broken_manifests_fail(breakage: str, tmp_path: Path) -> None:
    name, old, new, expected = BREAKAGES[breakage]
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    text = (copy / name).read_text()
    assert old in text, old
    (copy / name).write_text(text.replace(old, new, 1))
    problems = k8s_problems(kustomize(copy))
    assert any(expected in problem for problem in problems), problems
