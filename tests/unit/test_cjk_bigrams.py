"""`domain.text.cjk_bigrams`: Chinese and Japanese runs as overlapping character bigrams for the full-text indexes
(explore31 F2: `冰碛` inside a sentence was found by neither course search nor the catalogue)."""

from __future__ import annotations

import pytest

from smartcourse.domain.text import cjk_bigrams


@pytest.mark.parametrize(
    ("text", "indexed"),
    [
        # a run between punctuation was one token: now its bigrams, spaced from what is around it
        ("冰碛是冰川搬运的岩石。", " 冰碛 碛是 是冰 冰川 川搬 搬运 运的 的岩 岩石 。"),
        ("冰川学入门", " 冰川 川学 学入 入门 "),
        ("冰碛", " 冰碛 "),  # a two-character query is its one bigram
        ("冰", " 冰 "),  # a lone character is a unigram
        ("DNA是遗传物质", "DNA 是遗 遗传 传物 物质 "),  # Latin letters next to Han are their own word
        ("a冰b川c", "a 冰 b 川 c"),
        ("カタカナ・テスト", " カタ タカ カナ ・ テス スト "),  # katakana; the middle dot separates
        ("ひらがな", " ひら らが がな "),
        ("人々ー", " 人々 々ー "),  # iteration mark, prolonged sound mark
        ("𠀀𠀁", " 𠀀𠀁 "),  # supplementary-plane ideographs (extension B)
    ],
)
def test_cjk_runs_become_overlapping_bigrams(text: str, indexed: str) -> None:
    assert cjk_bigrams(text) == indexed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Glaciers carve U-shaped valleys; moraines are what they leave.",
        "Béchamel, crème brûlée, Straße",
        "passwd.txt <Biology> C++ e.g. don't",
        "الميتوكوندريا Zellwand mitochondries",
        "한국어 빙하는 빙하",  # Korean is written with spaces between words: left to the tokenizers
        "\uff21\uff22\uff23\uff11\uff12\uff13",  # full-width Latin letters and digits (NFKC makes them ASCII before)
        "「」。、\uff01\uff1f",  # CJK punctuation is no word
    ],
)
def test_other_text_is_left_exactly_as_it_is(text: str) -> None:
    assert cjk_bigrams(text) == text


def test_every_word_of_a_sentence_is_among_its_bigrams() -> None:
    """What makes a word inside a sentence findable: the bigrams of any word of two or more characters of the sentence
    are among the sentence's bigrams (the index and the query split the same way)."""
    sentence = set(cjk_bigrams("冰碛是冰川搬运和堆积的岩石碎屑。").split())
    for word in ("冰碛", "冰川", "冰川搬运", "堆积", "岩石碎屑"):
        assert set(cjk_bigrams(word).split()) <= sentence, word
    assert not set(cjk_bigrams("冰山").split()) <= sentence
