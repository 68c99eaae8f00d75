"""What a worker needs to know about an App, worked out once: which topics it reads and
the flow each feeds, the order lanes are read in, which topics are merged in event time,
and where each stage keeps its state."""

from __future__ import annotations

from dataclasses import dataclass

from streamsense.brokers.base import Broker, TopicConfig, TopicPartition
from streamsense.runtime.app import App, BatchStage, Flow


@dataclass(frozen=True)
class Topology:
    group: str
    sources: dict[str, Flow]  # every topic read (lanes included) → the flow it feeds
    lanes: dict[str, int]  # topic → rank: lower ranks are read first
    merged: dict[str, tuple[str, ...]]  # topic → the topics it is merged with in event time
    changelogs: dict[str, str]  # function stage → its keyed state's changelog topic
    batch_stages: dict[str, BatchStage]
    stage_sources: dict[str, list[str]]  # batch stage → the topics that feed it
    state_topics: dict[str, str]  # batch stage → its state changelog topic
    topic_configs: dict[str, TopicConfig]

    @classmethod
    def of(cls, app: App) -> Topology:
        sources = app.sources()
        batch_stages = app.batch_stages()
        return cls(
            group=app.group,
            sources=sources,
            lanes=app.lane_ranks(),
            merged=app.merged_topics(),
            changelogs={s: app.changelog_topic(s) for s in app.stage_names()},
            batch_stages=batch_stages,
            stage_sources={
                name: [t for t, f in sources.items() if stage in f.batch_stages()]
                for name, stage in batch_stages.items()
            },
            state_topics={name: app.state_topic(name) for name in batch_stages},
            topic_configs=app.topic_configs(),
        )

    def source_partitions(self, broker: Broker) -> list[TopicPartition]:
        """Every partition of every topic read (one describe per topic)."""
        return [
            TopicPartition(topic, p)
            for topic in self.sources
            for p in range(broker.describe_topic(topic).config.partitions)
        ]
