"""The recommendations API as the platform's endpoints (`streamsense serve apps/recs`; the
generic server adds the API key, size limit, metrics, /healthz and /readyz):

GET  /v1/recommend/{user}?k=20     the list, reasons, degraded flag
POST /v1/events/interactions       {"userId", "movieId", "rating", "timestamp"}: the
                                   next answer for that user includes it
GET  /v1/ready                     200 once the model has caught up (as /readyz)
"""

from __future__ import annotations

import msgspec

from streamsense.brokers.base import Broker
from streamsense.errors import InvalidEvent
from streamsense.serving import Call, Endpoint, Reply, Serving

from .serving import RecsService

MAX_K = 200


def endpoints(service: RecsService) -> list[Endpoint]:
    def recommend(call: Call) -> Reply:
        try:
            user = int(call.params["user"])
            k = int(call.query.get("k", "20"))
        except ValueError:
            return Reply.error(422, "user and k must be integers", "user")
        if not 1 <= k <= MAX_K:
            return Reply.error(422, f"k must be between 1 and {MAX_K}", "k")
        return Reply.json(service.recommend(user, k))

    def interaction(call: Call) -> Reply:
        try:
            service.post(call.body)
        except InvalidEvent as error:
            return Reply.error(422, str(error), error.field or "")
        except msgspec.DecodeError as error:
            return Reply.error(400, f"not JSON: {error}")
        return Reply(202, b'{"accepted":true}')

    def ready(_: Call) -> Reply:
        """200 once the model has every interaction the broker held at start, else 503
        (answers given before that come from a model still catching up)."""
        done = service.caught_up.is_set()
        return Reply.json({"ready": done}, 200 if done else 503)

    return [
        # the ranking is a ~0.1 ms compiled call: cheaper on the event loop than a thread hop
        Endpoint("GET", "/v1/recommend/{user}", recommend),
        # waits until the model has taken the posted interaction
        Endpoint("POST", "/v1/events/interactions", interaction, blocking=True),
        Endpoint("GET", "/v1/ready", ready),
    ]


def build_serving(service: RecsService, broker: Broker) -> Serving:
    """What `streamsense serve apps/recs` serves: the service's endpoints, its follower
    started and stopped with the server, ready once it has caught up."""
    return Serving(
        name="recs",
        broker=broker,
        streams={s.topic: s for s in (service.items, service.interactions)},
        endpoints=endpoints(service),
        on_start=service.start,
        on_stop=service.stop,
        ready=service.caught_up.is_set,
    )
