"""The HTML part of a notice's e-mail (explore56 F5: the certificate's verify address was plain text there)."""

from __future__ import annotations

from smartcourse.services.notifications import _html


def test_addresses_are_links_and_the_rest_is_escaped() -> None:
    body = (
        "Anyone can verify it with the code SC-AAAA at http://127.0.0.1:8156/certificates/verify/SC-AAAA.\n\n"
        "<b>not markup</b> & see (https://example.org/a?b=1&c=2)"
    )
    out = _html(body)
    url = "http://127.0.0.1:8156/certificates/verify/SC-AAAA"
    assert f'<a href="{url}">{url}</a>.</p>' in out  # the sentence's full stop is not part of it
    assert '(<a href="https://example.org/a?b=1&amp;c=2">https://example.org/a?b=1&amp;c=2</a>)' in out
    assert "&lt;b&gt;not markup&lt;/b&gt; &amp; see" in out and out.count("<p>") == 2
    assert _html("no address here") == "<!doctype html><html><body><p>no address here</p></body></html>"
