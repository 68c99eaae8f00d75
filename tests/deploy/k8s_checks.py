"""What deploy/k8s must get right (issue #20), as a list of problems over the objects
`kubectl kustomize` builds: empty when they are right."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import kubernetes_validate
from pydantic import ValidationError

from streamsense.serving.routes import ROUTES

from .brokers import bootstrap, kafka_url_problems, url_timeout_s
from .code_facts import app_facts, app_folder, consumer_offset_reset, environment_names
from .commands import command_problems
from .files import ROOT
from .keda_model import ScaledObject

# The oldest Kubernetes release the manifests are meant for; every field they use exists
# there (and kubernetes-validate's strict mode refuses fields that do not).
KUBERNETES_VERSION = "1.30.0"
CUSTOM_KINDS = {"ScaledObject"}  # not in Kubernetes' schemas: keda_model.py checks them
_REFERENCE = re.compile(r"\$\((\w+)\)")
Objects = list[dict[str, Any]]


def k8s_problems(objects: Objects) -> list[str]:
    problems = _schema_problems(objects)
    for deployment in _of_kind(objects, "Deployment"):
        problems += _pod_problems(deployment, objects)
    for service in _of_kind(objects, "Service"):
        problems += _service_problems(service, objects)
    scaled = _of_kind(objects, "ScaledObject")
    if not scaled:
        problems.append("no ScaledObject for the workers")
    for scaled_object in scaled:
        problems += _scaled_object_problems(scaled_object, objects)
    problems += _image_problems(objects)
    return problems


def _of_kind(objects: Objects, kind: str) -> Objects:
    return [o for o in objects if o.get("kind") == kind]


def _named(objects: Objects, kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in _of_kind(objects, kind) if o["metadata"]["name"] == name), None)


def _schema_problems(objects: Objects) -> list[str]:
    problems = []
    for obj in objects:
        if obj.get("kind") in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
            where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            problems.append(f"{where}: {getattr(e, 'message', e)}")
    return problems


def _pod_problems(deployment: dict[str, Any], objects: Objects) -> list[str]:
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    problems = _pod_security_problems(name, pod)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for volume in volumes.values():
        claim = volume.get("persistentVolumeClaim", {}).get("claimName")
        if claim and _named(objects, "PersistentVolumeClaim", claim) is None:
            problems.append(f"{name}: volume claims {claim!r}, which is not defined")
    for container in pod["containers"]:
        args = [str(a) for a in container.get("args", [])]
        problems += command_problems(args)
        env, env_problems = _environment(name, container, objects)
        problems += env_problems
        mounts = {m["name"] for m in container.get("volumeMounts", [])}
        problems += [f"{name}: mounts unknown volume {m!r}" for m in mounts - set(volumes)]
        resources = container.get("resources", {})
        if not resources.get("requests") or not resources.get("limits"):
            problems.append(f"{name}: resource requests and limits are both needed")
        if args and args[0] == "run":
            problems += _worker_problems(name, pod, env)
        if args and args[0] == "serve":
            problems += _api_problems(name, container, args, env)
    return problems


def _pod_security_problems(name: str, pod: dict[str, Any]) -> list[str]:
    problems = []
    security = pod.get("securityContext", {})
    if security.get("runAsNonRoot") is not True or security.get("runAsUser", 0) == 0:
        problems.append(f"{name}: pods must run as a non-root user")
    if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccomp profile RuntimeDefault is needed")
    for container in pod["containers"]:
        own = container.get("securityContext", {})
        if own.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: the root file system must be read-only")
        if own.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: privilege escalation must be off")
        if own.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: every capability must be dropped")
    return problems


def _environment(
    name: str, container: dict[str, Any], objects: Objects
) -> tuple[dict[str, str], list[str]]:
    """The container's environment as the kubelet makes it (`$(NAME)` references expanded,
    references to config maps and secrets resolved; a pod's own fields get a stand-in),
    and what is wrong with it."""
    env: dict[str, str] = {}
    problems = []
    used = {
        ref
        for text in [
            *container.get("args", []),
            *(e.get("value", "") for e in container.get("env", [])),
        ]
        for ref in _REFERENCE.findall(str(text))
    }
    for entry in container.get("env", []):
        variable = entry["name"]
        if "value" in entry:
            env[variable] = _REFERENCE.sub(lambda m: env.get(m[1], m[0]), str(entry["value"]))
        else:
            value, problem = _value_from(entry["valueFrom"], objects)
            env[variable] = value
            problems += [f"{name}: ${variable}: {problem}"] if problem else []
        if variable not in environment_names() and variable not in used:
            problems.append(f"{name}: ${variable} is read nowhere in the code nor referenced")
    unresolved = [v for v, text in env.items() if _REFERENCE.search(text)]
    problems += [f"{name}: ${v} refers to a variable not defined before it" for v in unresolved]
    return env, problems


def _value_from(source: dict[str, Any], objects: Objects) -> tuple[str, str | None]:
    if "fieldRef" in source:
        return f"<{source['fieldRef']['fieldPath']}>", None
    for key, kind, field in (
        ("configMapKeyRef", "ConfigMap", "data"),
        ("secretKeyRef", "Secret", "data"),
    ):
        if key in source:
            ref = source[key]
            obj = _named(objects, kind, ref["name"])
            if obj is None:
                return "", f"no {kind} {ref['name']!r}"
            if ref["key"] not in obj.get(field, {}):
                return "", f"{kind} {ref['name']} has no key {ref['key']!r}"
            return str(obj[field][ref["key"]]), None
    return "", f"unsupported valueFrom {sorted(source)}"


def _worker_problems(name: str, pod: dict[str, Any], env: dict[str, str]) -> list[str]:
    url = env.get("STREAMSENSE_BROKER", "")
    problems = kafka_url_problems(url, exactly_once=True)
    if "transactional_id=<metadata.name>" not in url:
        problems.append(f"{name}: each worker needs its own transactional id (the pod's name)")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if url and grace <= url_timeout_s(url):
        problems.append(f"{name}: terminationGracePeriodSeconds {grace} <= transaction timeout")
    if "STREAMSENSE_ONLINE_STORE" not in env:
        problems.append(f"{name}: workers need the shared online store")
    return problems


def _api_problems(
    name: str, container: dict[str, Any], args: list[str], env: dict[str, str]
) -> list[str]:
    problems = kafka_url_problems(env.get("STREAMSENSE_BROKER", ""), exactly_once=False)
    for variable in ("STREAMSENSE_API_KEY", "STREAMSENSE_ONLINE_STORE"):
        if variable not in env:
            problems.append(f"{name}: ${variable} is not set")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    port = int(args[args.index("--port") + 1]) if "--port" in args else None
    if ports.get("http") != port:
        problems.append(f"{name}: port http {ports.get('http')} is not --port {port}")
    wanted = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe_name, path in wanted.items():
        probe = container.get(probe_name, {}).get("httpGet", {})
        if probe.get("path") != path or path not in ROUTES:
            problems.append(f"{name}: {probe_name} should GET {path}, not {probe.get('path')}")
        if probe.get("port") not in ports:
            problems.append(f"{name}: {probe_name} probes port {probe.get('port')!r}")
    return problems


def _service_problems(service: dict[str, Any], objects: Objects) -> list[str]:
    name = service["metadata"]["name"]
    selector = service["spec"].get("selector", {})
    pods = [
        d["spec"]["template"]
        for d in _of_kind(objects, "Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"].get("labels", {}).items()
    ]
    if not pods:
        return [f"{name}: selects no pod"]
    ports = {
        p["name"] for pod in pods for c in pod["spec"]["containers"] for p in c.get("ports", [])
    }
    return [
        f"{name}: targets port {p['targetPort']!r}, which its pods do not have"
        for p in service["spec"]["ports"]
        if p["targetPort"] not in ports
    ]


def _scaled_object_problems(obj: dict[str, Any], objects: Objects) -> list[str]:
    try:
        scaled = ScaledObject.model_validate(obj)
    except ValidationError as error:
        return [f"ScaledObject: {error}"]
    spec = scaled.spec
    target = _named(objects, "Deployment", spec.scaleTargetRef.name)
    if target is None:
        return [f"ScaledObject scales {spec.scaleTargetRef.name!r}, which is no Deployment"]
    container = target["spec"]["template"]["spec"]["containers"][0]
    facts = app_facts(app_folder([str(a) for a in container["args"]]))
    problems = []
    topics = {t.metadata.topic for t in spec.triggers}
    if topics != set(facts.topics):
        problems.append(
            f"ScaledObject watches {sorted(map(str, topics))}, the app reads {sorted(facts.topics)}"
        )
    if spec.maxReplicaCount > facts.partitions:
        problems.append(f"maxReplicaCount {spec.maxReplicaCount} > {facts.partitions} partitions")
    config = _of_kind(objects, "ConfigMap")
    servers = {str(c.get("data", {}).get("KAFKA_BOOTSTRAP")) for c in config}
    env, _ = _environment(target["metadata"]["name"], container, objects)
    for trigger in spec.triggers:
        meta = trigger.metadata
        if meta.consumerGroup != facts.group:
            problems.append(
                f"consumerGroup {meta.consumerGroup!r} is not the app's group {facts.group!r}"
            )
        if (
            meta.bootstrapServers != bootstrap(env.get("STREAMSENSE_BROKER", ""))
            or meta.bootstrapServers not in servers
        ):
            problems.append(f"bootstrapServers {meta.bootstrapServers} is not the workers' Kafka")
        if meta.offsetResetPolicy != consumer_offset_reset():
            problems.append(f"offsetResetPolicy {meta.offsetResetPolicy} is not the workers'")
        # Under exactly once Kafka counts each commit marker as an offset: an idle group
        # shows a lag of about one per source partition, which must not wake a worker.
        idle_lag = facts.partitions * len(facts.topics)
        if int(meta.activationLagThreshold) <= idle_lag:
            problems.append(f"activationLagThreshold <= an idle group's lag ({idle_lag})")
        if int(meta.lagThreshold) <= int(meta.activationLagThreshold):
            problems.append("lagThreshold must be above activationLagThreshold")
    return problems


def _image_problems(objects: Objects) -> list[str]:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    images = {
        c["image"]
        for d in _of_kind(objects, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    wanted = f"streamsense:{version}"
    return [f"image {image} is not {wanted} (pyproject's version)" for image in images - {wanted}]
