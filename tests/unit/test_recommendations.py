"""The blend's arithmetic: signal shapes, the strongest contribution names the reason, ties are ordered."""

from __future__ import annotations

import math

from smartcourse.services.recommendations import (
    CO_HALF,
    SIM_FLOOR,
    W_NEXT,
    Candidate,
    blend,
    co_strength,
    content_signal,
    popularity_signal,
)


def test_signals_are_bounded_and_monotonic() -> None:
    assert co_strength(0) == 0.0
    assert co_strength(CO_HALF) == 0.5
    assert co_strength(1) < co_strength(3) < co_strength(100) < 1.0
    assert content_signal(SIM_FLOOR) == 0.0 and content_signal(-0.3) == 0.0
    assert content_signal(1.0) == 1.0
    assert 0 < content_signal(0.5) < content_signal(0.7)
    assert popularity_signal(0, 10) == 0.0 and popularity_signal(10, 10) == 1.0
    assert math.isclose(popularity_signal(3, 15), math.log(4) / math.log(16))
    assert popularity_signal(5, 0) == 0.0


def test_the_reason_is_the_strongest_contribution() -> None:
    score, reason, parts = blend(Candidate(content=0.4, co=10.0, popular=0.5))
    assert reason == "co_enrolled"
    assert math.isclose(score, sum(parts.values()), rel_tol=1e-5)
    assert blend(Candidate(content=0.9, co=1.0))[1] == "similar_content"
    assert blend(Candidate(popular=1.0))[1] == "popular"
    # A course the learner just became eligible for outranks strong content + 5 shared learners + top popularity
    # (only near-duplicate content with very many shared learners can pass it).
    eligible, _, _ = blend(Candidate(next_step=1.0))
    strong, _, _ = blend(Candidate(content=0.8, co=CO_HALF, popular=1.0))
    assert eligible == W_NEXT and eligible > strong
    assert blend(Candidate(next_step=1.0, content=1.0))[1] == "next_step"


def test_nothing_scores_zero() -> None:
    score, _, parts = blend(Candidate())
    assert score == 0.0 and parts == {}
