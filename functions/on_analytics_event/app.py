"""Kafka consumer `analytics`: keeps the dashboard's counters from platform events (MSK event source)."""

from smartcourse.domain.events import TOPICS
from smartcourse.entrypoints.msk import msk_handler
from smartcourse.services.analytics import CONSUMER

# The topics carrying the events this consumer applies: the template's MSK event source subscribes to them.
CONSUMES = sorted({TOPICS[event_type.split(".", 1)[0]] for event_type in CONSUMER.effects})

handler = msk_handler(CONSUMER)
