"""`domain.passwords`: a new password zxcvbn finds guessable is refused, within a bounded cost (explore59 F4,
explore62 F1-F4)."""

from __future__ import annotations

import secrets

from smartcourse.domain import passwords


def test_common_words_patterns_and_the_accounts_own_words_are_weak() -> None:
    for weak in ("password", "12345678", "aaaaaaaa", "password-1", "qwertyuiop", "smartcourse2026"):
        assert passwords.weakness(weak) is not None, weak
    # Read as it is stored, NFKC-normalized: "password" in full-width letters is "password" (explore62 F3).
    assert passwords.weakness("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44") is not None
    # The account's address and name count (explore62 F4).
    assert passwords.weakness("ada.lovelace@example.com", ["ada.lovelace@example.com", "Ada Lovelace"]) is not None
    assert passwords.weakness("adalovelace1815", ["ada.lovelace@example.com", "Ada Lovelace"]) is not None
    assert passwords.weakness("correct-horse-1") is None and passwords.weakness("quartz-lantern-1") is None
    # Joined by separators, capitals and a year, they are still the account's words (explore64 F5).
    for weak in ("smartcourse-student", "SmartCourse2026!"):
        assert passwords.weakness(weak) is not None, weak
    assert passwords.weakness("ada-lovelace-ex64", ["ada.lovelace@ex64.org", "Ada Lovelace"]) is not None
    assert passwords.weakness("my favourite course is astronomy 42") is None  # a word of the service, among others
    # The name without its accents is still the name (explore69 F12: `ivyinvitee` passed for "Ivy Invitée").
    assert passwords.weakness("ivyinvitee", ["ivy@example.com", "Ivy Invitée"]) is not None


def test_a_long_password_is_read_not_refused() -> None:
    """explore62 F1: zxcvbn refuses a password over 72 characters (ValueError): every new password of 73-128
    characters was refused."""
    for n in (73, 100, 128):
        assert passwords.weakness(secrets.token_urlsafe(96)[:n]) is None, n


def test_the_l33t_matcher_is_skipped_beyond_its_budget() -> None:
    """explore62 F2: 72 characters of l33t symbols cost 2 s of CPU on the request's event loop (the matcher tries
    every combination of substitutions). Beyond its budget it is skipped; a short l33t password is still read."""
    from zxcvbn import matching

    passwords.weakness("warm-up-one")  # installs the bound
    crafted = ("!$%(+0123456789<@[{|" * 4)[:72]
    assert matching.l33t_match(crafted) == []  # skipped, not computed
    assert matching.l33t_match("p@ssw0rd")  # a short one is matched: "password"
    assert passwords.weakness("p@ssw0rd") is not None
