"""How guessable a new password is (zxcvbn), within a bounded cost.

NIST SP 800-63B §5.1.1.2 has a new password checked against lists of common ones, dictionary words, repetitive or
sequential characters and context-specific words (the service's name, the user's own address or name): explore59 F4
found `password`, `12345678` and `aaaaaaaa` accepted. zxcvbn does that check; two of its edges are bounded here
(explore62 F1, F2): it refuses a password over 72 characters outright, so it reads the first 72, and its l33t matcher
tries every combination of substitutions the password's symbols allow, which a 72-character password of symbols
made cost 2 s of CPU on the request's event loop. That matcher is skipped when its work would exceed a budget: such
a password is full of symbols and digits, the opposite of a common one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from smartcourse.domain.text import fold_marks

#: The least zxcvbn score a new password needs: 2, at least 10^6 guesses ("password", "12345678", "aaaaaaaa",
#: "password-1" are below it).
MIN_SCORE = 2
#: zxcvbn refuses a longer password (ValueError): it reads this many characters.
READ = 72
#: The l33t matcher's work, (substitution combinations) x length^2: above it the matcher is skipped (about 0.1 s).
L33T_BUDGET = 160_000
#: Words a password of this service must not lean on, beside the user's own.
SITE_WORDS = ("smartcourse", "smart course", "course", "courses", "student", "instructor", "learning")

_installed = False


def _install_bounded_l33t() -> None:
    """zxcvbn's `omnimatch` looks its matchers up by name at each call: the l33t one is wrapped once per process.

    Wrapped in zxcvbn's module rather than by calling the matchers with a list of our own: its repeat matcher calls
    the module's `omnimatch` again on the repeated part (`aaaa…` of symbols), which a list of our own would not
    bound. Nothing else in a process of ours calls zxcvbn."""
    global _installed
    if _installed:
        return
    from zxcvbn import matching

    whole = matching.l33t_match

    def bounded(password: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        table = matching.relevant_l33t_subtable(password, matching.L33T_TABLE)
        combinations = len(matching.enumerate_l33t_subs(table)) if table else 0
        if combinations * len(password) ** 2 > L33T_BUDGET:
            return []
        result: list[dict[str, Any]] = whole(password, *args, **kwargs)
        return result

    matching.l33t_match = bounded
    _installed = True


def _context(words: Iterable[str]) -> list[str]:
    """The user's words as zxcvbn takes them: each one, and an address's parts (`ada.lovelace@example.com`)."""
    out: list[str] = list(SITE_WORDS)
    typed = [unicodedata.normalize("NFKC", word or "").strip().lower() for word in words]
    # Each also without its accents: `ivyinvitee` leans on "Ivy Invitée" as much as `ivyinvitée` (explore69 F12).
    for word in dict.fromkeys([*typed, *(fold_marks(w) for w in typed)]):
        if not word:
            continue
        local, _, domain = word.partition("@")
        joined = "".join(ch for ch in local if ch.isalnum())  # "ada.lovelace", "Ada Lovelace": "adalovelace"
        parts = [*local.replace("_", ".").replace("-", ".").split("."), *word.split()]
        out += [p for p in (word, local, joined, domain.split(".")[0], *parts) if len(p) > 2]
    return out


def weakness(password: str, context: Sequence[str] = ()) -> str | None:
    """Why `password` is too easy to guess (zxcvbn's warning, or a general reason), or None when it is not. Read as
    it is stored, NFKC-normalized (explore62 F3: "password" in full-width letters passed, and logged in as
    `password`); `context`: the account's address and name."""
    from zxcvbn import zxcvbn  # its word lists load on first use (~25 ms), not with every function's schemas

    _install_bounded_l33t()
    words = _context(context)
    text = unicodedata.normalize("NFKC", password)[:READ]
    found = zxcvbn(text, user_inputs=words)
    if found["score"] < MIN_SCORE:
        warning = str(found["feedback"].get("warning") or "").rstrip(".")
        return (
            f"{warning[:1].lower()}{warning[1:]}" if warning else "it is a common password, a word or a simple pattern"
        )
    # What is left without the account's and the service's words must stand on its own: `smartcourse-student`,
    # `SmartCourse2026!`, `ada-lovelace-ex64` passed zxcvbn, the separators and capitals counting as strength
    # (explore64 F5).
    rest = text.lower()
    for word in sorted({w for w in words if len(w) > 2}, key=len, reverse=True):
        rest = rest.replace(word, " ")
    if zxcvbn(rest)["score"] < MIN_SCORE:
        return "it is made of your name, your address or this service's name; add words of your own"
    return None


def refusal(reason: str) -> str:
    """The message of a refused password."""
    return f"this password is too easy to guess ({reason}); a few uncommon words together make a strong one"
