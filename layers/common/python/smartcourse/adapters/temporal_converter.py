"""The data converter every Temporal client and worker of SmartCourse uses: pydantic JSON, one type adapter per type.

`temporalio.contrib.pydantic.pydantic_data_converter` caches a `TypeAdapter` per type hint, but in each *converter
instance*, and the worker builds a new payload converter for every workflow run (the SDK calls the data
converter's `payload_converter_class()` per workflow instance). So every enrollment workflow rebuilt the pydantic
schema of its input dataclass and of its local activity's result: 7 % of the worker process's busy CPU in a
py-spy profile of the enrollment drain (docs/benchmarks.md, "Eighth pass"). Here the adapters are cached once
per process and shared by every instance; the JSON on the wire is exactly pydantic's, as before.

This module imports only the SDK's converter and pydantic: the sandboxed workflows' runner can load it.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

#: Bounded like the SDK's own per-instance cache; the workflows and activities of this code base use a few dozen types.
MAX_CACHED_TYPE_ADAPTERS = 1024

_type_adapters: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(maxsize=MAX_CACHED_TYPE_ADAPTERS)(
    TypeAdapter
)


def type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    """The process's adapter for `type_hint` (built on first use)."""
    return _type_adapters(type_hint)


class SharedPydanticJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    """`PydanticJSONPlainPayloadConverter` whose type adapters are the process's, not the instance's."""

    def __init__(self) -> None:
        super().__init__(max_cached_type_adapters=0)
        self._type_adapter = _type_adapters

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled (a process-pool activity): the receiving process's shared cache."""
        super().__setstate__(state)
        self._type_adapter = _type_adapters


class PayloadConverter(CompositePayloadConverter):
    """The SDK's default encodings with JSON done by pydantic through the shared adapters."""

    def __init__(self) -> None:
        json_converter = SharedPydanticJSONPayloadConverter()
        super().__init__(
            *(
                json_converter if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


#: Pass as `Client.connect(..., data_converter=data_converter)`; workers built on that client inherit it.
data_converter = DataConverter(payload_converter_class=PayloadConverter)
