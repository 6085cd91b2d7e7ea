"""The HTML part of a notice's e-mail (explore56 F5: the certificate's verify address was plain text there)."""

from __future__ import annotations

from smartcourse.services.notifications import _html

OWN = "http://127.0.0.1:8156"


def test_the_platforms_addresses_are_links_and_the_rest_is_escaped() -> None:
    body = (
        "Anyone can verify it with the code SC-AAAA at http://127.0.0.1:8156/certificates/verify/SC-AAAA.\n\n"
        f"<b>not markup</b> & see ({OWN}/courses?b=1&c=2)"
    )
    out = _html(body, OWN + "/")
    url = "http://127.0.0.1:8156/certificates/verify/SC-AAAA"
    assert f'<a href="{url}">{url}</a>.</p>' in out  # the sentence's full stop is not part of it
    linked = f"{OWN}/courses?b=1&amp;c=2"
    assert f'(<a href="{linked}">{linked}</a>)' in out
    assert "&lt;b&gt;not markup&lt;/b&gt; &amp; see" in out and out.count("<p>") == 2
    assert _html("no address here", OWN) == "<!doctype html><html><body><p>no address here</p></body></html>"


def test_an_address_users_wrote_stays_text() -> None:
    """explore59 F3: an instructor's course title "Security notice: verify your account at https://..." became a link
    in the platform's own welcome e-mail. Only the platform's addresses are; a look-alike host is not one."""
    for foreign in (
        "https://smartcourse-login.evil.example/verify",
        "http://127.0.0.1:81560/x",
        "http://127.0.0.1:8156.evil.example/x",
        "https://example.org/a?b=1",
    ):
        out = _html(f"you are enrolled in Security notice: verify your account at {foreign}. Welcome.", OWN)
        assert "<a " not in out, out
        assert foreign.replace("&", "&amp;") in out
