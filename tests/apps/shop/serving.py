"""`streamsense serve tests/apps/shop`: orders decided by one rule over a count per user."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import streamsense as ss
from streamsense import features as F
from streamsense.serving.cascade import Cascade
from streamsense.serving.rules import RuleSet
from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.views import OnlineFeatures

if TYPE_CHECKING:
    from streamsense.serving import Serving


def serving(broker: ss.Broker, state_dir: Path) -> Serving:
    from streamsense.serving import Serving

    from .app import orders

    user = F.FeatureGroup(orders, key="user")
    user.add("orders_1h", F.count(), F.rolling("1h"))
    online = OnlineFeatures(F.FeatureSet("shop", user.features), MemoryOnlineStore())
    broker.create_topic("shop.decisions", ss.TopicConfig(orders.partitions), exist_ok=True)
    rules = RuleSet.from_dicts([{"name": "big", "when": "amount > 100", "action": "review"}])
    return Serving(
        name="shop",
        streams={orders.topic: orders},
        features={orders.topic: online},
        cascade=Cascade(rules=rules),
        broker=broker,
        decisions_topic="shop.decisions",
        views=online.views_by_name(),
    )
