"""The record headers serving reads and writes, named once.

``event-id`` names the event a record is about: the API and request/reply give each event
one, and every decision, reply and action carries it (action sinks deduplicate by it).
``decided-by: api`` marks an event the API already decided: the pipeline still counts it
in its features but must not decide it a second time.
"""

from __future__ import annotations

__all__ = ["DECIDED_BY_API", "DECIDED_BY_HEADER", "EVENT_ID_HEADER"]

EVENT_ID_HEADER = "event-id"
DECIDED_BY_HEADER = "decided-by"
DECIDED_BY_API = (DECIDED_BY_HEADER, b"api")
