"""The event wire format and poison classification, without any engine."""

from __future__ import annotations

import json
import struct
import uuid

import pytest

from smartcourse.adapters.event_codec import EventCodec, PoisonMessage, dead_letter_envelope, decode, encode_wire
from smartcourse.domain.events import DomainEvent
from smartcourse.errors import Invalid


def _envelope(**data: object) -> dict[str, object]:
    user_id = str(uuid.uuid4())
    return DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student", **data}).envelope()


def test_wire_format_is_magic_byte_schema_id_then_json() -> None:
    envelope = _envelope()
    value = encode_wire(4711, envelope)
    assert value[0] == 0
    assert struct.unpack(">I", value[1:5]) == (4711,)
    decoded = decode(value)
    assert decoded.schema_id == 4711
    assert decoded.envelope == envelope


def test_plain_json_is_accepted_without_schema_id() -> None:
    envelope = _envelope()
    decoded = decode(b'{"event_type": "user.registered", "schema_version": 1}')
    assert decoded.schema_id is None
    assert decode(json.dumps(envelope).encode()).envelope == envelope


@pytest.mark.parametrize(
    "value",
    [None, b"", b"\x00\x00\x01", b"not json at all", b"[1, 2]", b'{"event_type": 3}', b"\x00\x00\x00\x00\x07{oops"],
)
def test_what_is_not_an_envelope_is_poison(value: bytes | None) -> None:
    with pytest.raises(PoisonMessage):
        decode(value)


async def test_producer_refuses_an_envelope_that_breaks_its_contract() -> None:
    bad = _envelope(role="wizard")
    with pytest.raises(Invalid, match="breaks its contract"):
        await EventCodec().encode(bad)
    assert decode(await EventCodec().encode(_envelope())).schema_id is None  # no registry: plain JSON


async def test_consumer_side_contract_check_is_poison() -> None:
    with pytest.raises(PoisonMessage, match="role"):
        await EventCodec().validate(decode(encode_wire(1, _envelope(role="wizard"))))
    with pytest.raises(PoisonMessage, match="no contract"):
        await EventCodec().validate(decode(b'{"event_type": "nobody.knows", "schema_version": 1}'))


def test_dead_letter_envelope_keeps_the_envelope_or_the_raw_bytes() -> None:
    good = _envelope()
    assert dead_letter_envelope(b"x", topic="t", partition=0, offset=1, decoded=decode(encode_wire(1, good))) == good
    raw = dead_letter_envelope(b"garbage", topic="t", partition=2, offset=9)
    again = dead_letter_envelope(b"garbage", topic="t", partition=2, offset=9)
    assert raw["event_id"] == again["event_id"]  # a redelivered poison record maps to the same dead letter
    assert raw["source"] == {"topic": "t", "partition": 2, "offset": 9}


class _Registry:
    """A stand-in for the schema registry client: our contract of user.registered v1 is id 7; id 8 is a schema
    some other producer registered, stricter than ours (it requires `x`)."""

    def __init__(self) -> None:
        self.validated_with: list[int] = []

    def known_id(self, event_type: str, version: int) -> int | None:
        return 7 if (event_type, version) == ("user.registered", 1) else None

    async def validator(self, schema_id: int) -> object:
        from jsonschema import Draft7Validator

        self.validated_with.append(schema_id)
        if schema_id != 8:
            raise KeyError(schema_id)
        return Draft7Validator({"type": "object", "required": ["x"]})


async def test_a_record_written_with_our_own_contract_is_checked_once_against_it() -> None:
    registry = _Registry()
    codec = EventCodec(registry)  # type: ignore[arg-type]
    await codec.validate(decode(encode_wire(7, _envelope())))
    with pytest.raises(PoisonMessage, match="role"):  # the local contract still applies
        await codec.validate(decode(encode_wire(7, _envelope(role="wizard"))))
    assert registry.validated_with == []  # the registry's copy of the same schema was not checked again


async def test_a_record_written_with_another_schema_is_checked_against_that_schema_too() -> None:
    registry = _Registry()
    codec = EventCodec(registry)  # type: ignore[arg-type]
    with pytest.raises(PoisonMessage, match="breaks registered schema 8"):
        await codec.validate(decode(encode_wire(8, _envelope())))
    with pytest.raises(PoisonMessage, match="unknown schema id 9"):
        await codec.validate(decode(encode_wire(9, _envelope())))
    assert registry.validated_with == [8, 9]
