"""Request and response models of the assistant's endpoints (inputs are Strict: no unknown fields, no NUL)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StrictBool, StrictInt, StringConstraints, model_validator

from smartcourse.domain.text import as_indexed
from smartcourse.schemas import Citation, Strict, Title, option_key

#: A question as the index has its text (`domain.text.as_indexed`), then stripped and checked (a NUL is refused,
#: as in every input: `Strict`).
Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    BeforeValidator(lambda v: as_indexed(v) if isinstance(v, str) and "\x00" not in v else v),  # NUL: refused
]


class AskIn(Strict):
    course_id: uuid.UUID
    question: Question
    conversation_id: uuid.UUID | None = None


InteractionKind = Literal["ask", "summary", "objectives", "quiz", "explain"]
InteractionOutcome = Literal["answer", "clarify", "refuse", "generated", "error", "cancelled"]


class AskOut(BaseModel):
    type: Literal["answer", "clarify", "refuse"]
    answer: str
    citations: list[Citation]
    conversation_id: uuid.UUID
    interaction_id: uuid.UUID


class GenerateIn(Strict):
    course_id: uuid.UUID
    lesson_id: uuid.UUID | None = None


class QuizGenerateIn(GenerateIn):
    num_questions: Annotated[StrictInt, Field(ge=1, le=10)] = 3  # not `true` nor "3" (explore42 F11)


class ExplainIn(Strict):
    course_id: uuid.UUID
    concept: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    level: Literal["beginner", "intermediate", "advanced"] = "beginner"


class SaveQuizIn(Strict):
    module_id: uuid.UUID
    # A lesson's title, as a lesson's create takes it: one line, something visible (a newline or a bidi override was
    # accepted here, then refused by the lesson it makes, a 500: explore60 F1).
    title: Title | None = None
    pass_score: Annotated[StrictInt, Field(ge=0, le=100)] = 70
    #: Save it although the lesson or material it was generated from has left the course (else 409
    #: `generated_quiz_source_gone`).
    allow_missing_source: StrictBool = False


#: A list marker the model put before an option: "2. ", "B) ", "(c) ", "- " (not the "3.5" of "3.5 metres").
_LIST_MARKER = re.compile(r"^\s*(?:\(?(?:\d{1,2}|[A-Fa-f])[.)]|[-*•])\s+")


class GeneratedQuestion(BaseModel):
    """One generated quiz question: what the model must produce, checked strictly (else it is retried)."""

    model_config = {"extra": "forbid"}

    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
    options: Annotated[
        list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]],
        Field(min_length=2, max_length=6),
    ]
    answer: Annotated[int, Field(ge=0)]
    source: Annotated[int, Field(ge=1)]  # the passage number it is drawn from

    @model_validator(mode="after")
    def _consistent(self) -> GeneratedQuestion:
        if self.answer >= len(self.options):
            raise ValueError("answer must be the index of one of the options")
        # Without the list markers the model numbers them with ("2. ice forms …", "3. ice forms …" were saved as two
        # options; explore31 F9); a student sees the options listed anyway.
        self.options = [_LIST_MARKER.sub("", o, count=1) or o for o in self.options]
        if len({option_key(o) for o in self.options}) != len(self.options):
            raise ValueError("options must be distinct")
        return self


class QuizQuestionOut(BaseModel):
    prompt: str
    options: list[str]
    answer: int
    source_chunk_id: str
    source: str


BasedOn = Literal["published", "working_copy"]
BASED_ON = (
    "`working_copy` when a passage given to the model is text not published yet (a draft course, a lesson added or "
    "edited since the publish: its `chunk_id` has version 0); `published` when every one is the live version's"
)
NOT_READ = (
    "the materials of the working copy not read: `not_published`, uploaded since the last publish, whose text is "
    "extracted then; `no_text`, published but with no text read (an image-only PDF: the publish report names it)"
)


class MaterialNotRead(BaseModel):
    id: str
    filename: str
    reason: Literal["not_published", "no_text"] = "not_published"


class GenerationOut(BaseModel):
    """Summary / objectives / explanation: grounded text and its citations — for a summary or an explanation the
    passages its text cites (`[]` when it cites none), for objectives (which cite nothing) the passages they were
    written from."""

    kind: Literal["summary", "objectives", "explain"]
    text: str
    items: list[str] = Field(
        default=[],
        description="objectives: the 1 to 5 that passed the checks (fewer than the 3 to 5 asked when the model's "
        "others failed them); empty for the other kinds",
    )
    citations: list[Citation]
    sources: list[Citation] = Field(
        default=[], description="every passage the model was given, in order: what the text could draw on"
    )
    interaction_id: uuid.UUID
    based_on: BasedOn = Field(default="published", description=BASED_ON)
    materials_not_read: list[MaterialNotRead] = Field(default=[], description=NOT_READ)


class QuizOut(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    lesson_id: uuid.UUID | None
    title: str
    questions: list[QuizQuestionOut]
    sources: list[Citation] = Field(
        default=[], description="every passage the model was given, in order: what the questions could draw on"
    )
    interaction_id: uuid.UUID
    saved_lesson_id: uuid.UUID | None = None
    based_on: BasedOn = Field(default="published", description=BASED_ON)
    materials_not_read: list[MaterialNotRead] = Field(default=[], description=NOT_READ)


class GeneratedQuizOut(BaseModel):
    """A generated quiz as stored (`GET /ai/generated-quizzes`): read again when the generation's answer was lost."""

    id: uuid.UUID
    course_id: uuid.UUID
    lesson_id: uuid.UUID | None = Field(description="the lesson or material it was generated from; null: course-wide")
    title: str
    questions: list[QuizQuestionOut]
    created_by: uuid.UUID
    created_at: datetime
    saved_lesson_id: uuid.UUID | None = Field(description="the quiz lesson it was saved as; null: not saved")


class GeneratedQuizPage(BaseModel):
    items: list[GeneratedQuizOut]
    total: int
    page: int
    page_size: int


class InteractionOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID | None
    conversation_id: uuid.UUID | None
    kind: InteractionKind
    outcome: InteractionOutcome
    reason: str | None
    streamed: bool
    latency_ms: int
    first_token_ms: int | None
    tokens_in: int
    tokens_out: int
    model: str
    error: str | None
    question: str | None = Field(
        description="The question as asked (its first 2,000 characters): to the one who asked only (null to the "
        "course's instructor and admins), and forgotten with the conversations after ASSISTANT_HISTORY_DAYS"
    )
    created_at: datetime
