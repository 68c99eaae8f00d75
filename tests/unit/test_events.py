from __future__ import annotations

import pytest

from streamsense.brokers import Record
from streamsense.errors import ConfigError, InvalidEvent
from tests.apps.counter import Click, clicks

NOW = 1_600_000_000_000


def record(value: bytes | None, offset: int = 0) -> Record:
    return Record("clicks", 1, offset, NOW, b"k", value)


def test_a_valid_record_becomes_an_event_with_its_coordinates() -> None:
    out = clicks.to_record(Click("u1", NOW - 5, 2.5))
    event = clicks.decode(record(out.value, offset=7))
    assert (event.key, event.event_time, event.payload.amount) == ("u1", NOW - 5, 2.5)
    assert (event.topic, event.partition, event.offset, event.ingest_time) == ("clicks", 1, 7, NOW)
    assert event.id == "clicks/1/7"
    assert out.key == b"u1"


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        (b"{not json", None, "malformed"),
        (b'{"user": "u", "ts": 1}', "amount", "missing"),
        (b'{"user": "u", "ts": "soon", "amount": 1}', "ts", "Expected `int`"),
        (b'{"user": "u", "ts": 1, "amount": 1e999}', "amount", "out of range"),
        (b'{"user": "u", "ts": 1, "amount": NaN}', None, "malformed"),
        (b'{"user": "u", "ts": 1, "amount": 1, "pad": "' + b"x" * 3000 + b'"}', None, "exceeds"),
        (b'{"user": "u", "ts": 99999999999999, "amount": 1}', "ts", "after ingest"),
        (None, None, "empty"),
    ],
)
def test_invalid_records_are_rejected_with_field_and_coordinates(
    value: bytes | None, field: str | None, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        clicks.decode(record(value, offset=3))
    error = caught.value
    assert error.field == field
    assert (error.topic, error.partition, error.offset) == ("clicks", 1, 3)
    assert not error.retryable
    if reason != "malformed":
        assert reason.lower() in error.reason.lower()


def test_nan_from_a_dict_is_rejected_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        clicks.parse({"user": "u", "ts": 1, "amount": float("nan")})
    assert caught.value.field == "amount"


def test_dead_letters_keep_the_original_bytes_and_say_why() -> None:
    bad = record(b'{"user": "u"}', offset=9)
    with pytest.raises(InvalidEvent) as caught:
        clicks.decode(bad)
    letter = clicks.dead_letter(bad, caught.value)
    headers = dict(letter.headers)
    assert letter.topic == "clicks.dead-letters"
    assert letter.value == b'{"user": "u"}'
    assert headers["source"] == b"clicks/1/9"
    assert b"missing" in headers["reason"]


def test_a_stream_must_name_real_fields() -> None:
    import streamsense as ss

    with pytest.raises(ConfigError):
        ss.Stream("x", Click, key="nope", time="ts")


def test_batch_decoding_agrees_with_record_by_record() -> None:
    good = [clicks.to_record(Click(f"u{i}", NOW - i, float(i))).value for i in range(5)]
    bad = [b"{not json", b'{"user": "u", "ts": 1, "amount": 1e999}', None]
    for values in (good, good[:2] + bad + good[2:]):
        records = [record(v, offset=i) for i, v in enumerate(values)]
        batch = clicks.decode_batch(records)
        for rec, got in zip(records, batch, strict=True):
            try:
                want = clicks.decode(rec)
            except InvalidEvent as error:
                assert isinstance(got, InvalidEvent)
                assert (got.reason, got.field, got.offset) == (
                    error.reason,
                    error.field,
                    error.offset,
                )
            else:
                assert got == want
