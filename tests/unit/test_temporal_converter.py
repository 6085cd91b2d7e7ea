"""The product's Temporal data converter: pydantic JSON as before, one type adapter per type for the process."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

from temporalio.contrib.pydantic import pydantic_data_converter

from smartcourse.adapters.temporal_converter import PayloadConverter, data_converter, type_adapter


@dataclasses.dataclass
class _Input:
    enrollment_id: uuid.UUID
    at: datetime
    steps: list[str]


def test_payloads_are_the_pydantic_converters_and_read_back() -> None:
    value = _Input(uuid.uuid4(), datetime(2026, 12, 4, tzinfo=UTC), ["set_up", "welcome"])
    ours = data_converter.payload_converter.to_payloads([value])
    theirs = pydantic_data_converter.payload_converter.to_payloads([value])
    assert [p.data for p in ours] == [p.data for p in theirs]
    assert ours[0].metadata["encoding"] == b"json/plain"
    # What one side writes the other reads (workflows in flight at the upgrade, clients not yet upgraded).
    assert pydantic_data_converter.payload_converter.from_payloads(ours, [_Input]) == [value]
    assert data_converter.payload_converter.from_payloads(theirs, [_Input]) == [value]


def test_every_converter_instance_shares_the_type_adapters() -> None:
    """The worker builds a payload converter per workflow run: the adapter must not be rebuilt with it."""
    value = _Input(uuid.uuid4(), datetime(2026, 12, 4, tzinfo=UTC), [])
    first, second = PayloadConverter(), PayloadConverter()
    assert first is not second
    for converter in (first, second):
        [payload] = converter.to_payloads([value])
        assert converter.from_payloads([payload], [_Input]) == [value]
    assert type_adapter(_Input) is type_adapter(_Input)
    adapters = {id(c._type_adapter) for c in (*first.converters.values(), *second.converters.values())
                if hasattr(c, "_type_adapter")}  # fmt: skip
    assert len(adapters) == 1
