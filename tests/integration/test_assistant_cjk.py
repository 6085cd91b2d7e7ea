"""The assistant finds a Chinese word written inside a sentence of the course (explore31 F2: "冰碛是什么" was refused
and `explain 冰碛` answered 422 `concept_not_in_course`, since retrieval found nothing by keyword and the embedder's
similarity for so short a query is below the floor). Only the model is scripted."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.integration.test_assistant import ScriptedChat, enrolled_student, published_course, scripted

GLACIER_LESSON = {"title": "冰川地貌", "type": "text", "content": "冰碛是冰川搬运和堆积的岩石碎屑。"}
OTHER_LESSON = {"title": "Composting", "type": "text", "content": "A compost heap turns scraps into humus."}


async def test_a_chinese_word_inside_a_sentence_is_answered_and_explained(
    api: Api, worker: object, container: Any
) -> None:
    teacher = await api.user("instructor")
    course = await published_course(api, teacher, GLACIER_LESSON, OTHER_LESSON)
    student = await enrolled_student(api, course["id"])
    with scripted(container, ScriptedChat("冰碛是冰川搬运和堆积的岩石碎屑 [1]。")) as chat:
        r = await api.client.post(
            "/ai/ask", json={"course_id": course["id"], "question": "冰碛是什么\uff1f"}, headers=student["headers"]
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["type"] == "answer", body
        assert body["citations"] and "冰碛" in body["citations"][0]["quote"], body
        assert "冰碛是冰川搬运和堆积的岩石碎屑" in "\n".join(m.content for m in chat.prompts[-1])

        r = await api.client.post(
            "/ai/explain", json={"course_id": course["id"], "concept": "冰碛"}, headers=teacher["headers"]
        )
        assert r.status_code == 200, r.text
        assert r.json()["kind"] == "explain" and r.json()["sources"][0]["quote"], r.text
