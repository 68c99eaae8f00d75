"""The part of KEDA's ScaledObject (keda.sh/v1alpha1) and its Apache Kafka trigger that
deploy/k8s uses, as KEDA documents them (keda.sh/docs/2.x: "Scaling Deployments" and the
"Apache Kafka" scaler). Kubernetes' own schemas do not cover KEDA's resource, so this
model does: an unknown or misspelt field, or a value of the wrong type, is an error.

Trigger metadata are strings in KEDA (a map of string to string): numbers and booleans
are written quoted there, and an unquoted one fails here as KEDA's CRD would refuse it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Count = Annotated[str, StringConstraints(pattern=r"^[0-9]+$")]
Flag = Literal["true", "false"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KafkaMetadata(_Strict):
    bootstrapServers: str
    consumerGroup: str
    topic: str | None = None
    lagThreshold: Count = "10"
    activationLagThreshold: Count = "0"
    offsetResetPolicy: Literal["latest", "earliest"] = "latest"
    allowIdleConsumers: Flag = "false"
    scaleToZeroOnInvalidOffset: Flag = "false"
    excludePersistentLag: Flag = "false"
    limitToPartitionsWithLag: Flag = "false"
    partitionLimitation: str | None = None
    version: str | None = None
    sasl: str | None = None
    tls: str | None = None


class AuthenticationRef(_Strict):
    name: str
    kind: Literal["TriggerAuthentication", "ClusterTriggerAuthentication"] | None = None


class KafkaTrigger(_Strict):
    type: Literal["kafka"]
    name: str | None = None
    metadata: KafkaMetadata
    authenticationRef: AuthenticationRef | None = None
    metricType: Literal["AverageValue", "Value"] | None = None
    useCachedMetrics: bool | None = None


class ScaleTargetRef(_Strict):
    name: str
    kind: Literal["Deployment", "StatefulSet"] | None = None  # default: Deployment
    apiVersion: str | None = None
    envSourceContainerName: str | None = None


class Fallback(_Strict):
    failureThreshold: int = Field(ge=1)
    replicas: int = Field(ge=0)


class ScaledObjectSpec(_Strict):
    scaleTargetRef: ScaleTargetRef
    pollingInterval: int = Field(default=30, ge=1)
    cooldownPeriod: int = Field(default=300, ge=0)
    initialCooldownPeriod: int = Field(default=0, ge=0)
    idleReplicaCount: int | None = Field(default=None, ge=0)
    minReplicaCount: int = Field(default=0, ge=0)
    maxReplicaCount: int = Field(default=100, ge=1)
    fallback: Fallback | None = None
    triggers: list[KafkaTrigger] = Field(min_length=1)

    @model_validator(mode="after")
    def _replicas_in_order(self) -> ScaledObjectSpec:
        if self.minReplicaCount > self.maxReplicaCount:
            raise ValueError("minReplicaCount is above maxReplicaCount")
        if self.idleReplicaCount is not None and self.idleReplicaCount >= self.minReplicaCount:
            raise ValueError("idleReplicaCount must be below minReplicaCount")
        return self


class ObjectMeta(_Strict):
    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class ScaledObject(_Strict):
    apiVersion: Literal["keda.sh/v1alpha1"]
    kind: Literal["ScaledObject"]
    metadata: ObjectMeta
    spec: ScaledObjectSpec
