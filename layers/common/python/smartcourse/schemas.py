"""Request and response models shared by services and handlers (services never import the HTTP layer)."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
    UrlConstraints,
    field_validator,
    model_serializer,
    model_validator,
    validate_email,
)
from pydantic_core import PydanticCustomError

#: Characters a one-line field (a name, a title, a tag) may not hold: C0/C1 controls (line breaks and tabs
#: included), the Unicode line and paragraph separators, and the bidirectional embeddings, overrides and isolates
#: (they make a name display as another). A line break in a name would also break the e-mail header it goes into.
_NOT_IN_ONE_LINE = frozenset(
    [chr(c) for c in range(0x20)]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + ["\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)


def _class_of(chars: frozenset[str]) -> str:
    """`chars` as the inside of a JSON-Schema (ECMA-262) character class, in ranges of `\\uXXXX` escapes."""
    codes = sorted(ord(ch) for ch in chars)
    parts, start = [], codes[0]
    for prev, code in zip(codes, [*codes[1:], None], strict=True):
        if code != prev + 1:
            parts.append(f"\\u{start:04x}" + (f"-\\u{prev:04x}" if prev != start else ""))
            start = code if code is not None else start
    return "".join(parts)


#: The one-line rule as the OpenAPI shows it, so a client can check a title before sending it (explore13 F5). The
#: server strips surrounding whitespace first, hence the leading and trailing `\\s*`; the schema only, the check
#: itself is `_one_line` (its message is clearer than a regex's).
ONE_LINE_PATTERN = rf"^\s*[^{_class_of(_NOT_IN_ONE_LINE)}]*\s*$"
#: No NUL character (every string of every input model: `Strict`); the query parameters carry the same pattern.
NO_NUL_PATTERN = r"^[^\x00]*$"
_ONE_LINE_SCHEMA = Field(json_schema_extra={"pattern": ONE_LINE_PATTERN})


def _one_line(value: str) -> str:
    """One line of text, composed (NFC): a name or title typed decomposed is stored as the same letters composed, so
    it prints, sorts and compares as the same (explore65 F7: an NFD name printed with its accents off their letters
    on the certificate)."""
    if any(ch in _NOT_IN_ONE_LINE for ch in value):
        raise ValueError("must be one line of text, without control or bidirectional-override characters")
    return unicodedata.normalize("NFC", value)


#: Characters that show nothing: zero-width spaces and joiners, the word joiner and invisible operators, the BOM,
#: and the Hangul and braille blanks. A title or name made only of these (and spaces) is blank.
_INVISIBLE = frozenset("\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u3164\uffa0\u2800\u115f\u1160")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: Unicode categories that show nothing on their own: format characters (bidi marks, soft hyphen, tags), combining
#: marks (a lone accent, variation selectors), unassigned code points and noncharacters, separators.
_SHOWS_NOTHING = frozenset({"Cf", "Mn", "Me", "Cn", "Cs", "Co", "Zs", "Zl", "Zp", "Cc"})


def _shows_something(ch: str) -> bool:
    return ch not in _INVISIBLE and unicodedata.category(ch) not in _SHOWS_NOTHING


def _visible(value: str) -> str:
    """A title, name, tag or category shows something: not only invisible characters (`"\u200b"` was a title; the
    list missed the bidi marks, the soft hyphen, tag characters, a lone accent and U+FFFF: explore35 F2)."""
    if not any(_shows_something(ch) for ch in value):
        raise ValueError("must not be blank or made only of invisible characters")
    return value


def _no_comma(value: str) -> str:
    """The `tags` filter reads commas as separators (`tags=a,b`), so a tag holding one could never be found."""
    if "," in value:
        raise ValueError("a tag cannot contain a comma")
    return value


def _distinct_tags(tags: list[str]) -> list[str]:
    """Tags keep their first spelling; a repeat (whatever its case) is dropped."""
    seen: set[str] = set()
    kept = []
    for tag in tags:
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            kept.append(tag)
    return kept


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_one_line),
    AfterValidator(_visible),
    _ONE_LINE_SCHEMA,
]
#: Characters a name is cleaned of: zero-width spaces, the direction marks, the word joiner and invisible operators,
#: the BOM. "Admin\u200bistrator" printed as "Administrator" on a certificate (explore82 F3). The zero-width joiners
#: (U+200C, U+200D) stay: Persian, Indic scripts and emoji use them; embeddings, overrides and isolates are refused
#: (`_one_line`).
_HIDDEN_IN_NAMES = dict.fromkeys(
    [
        *map(ord, "\u00ad\u034f\u061c\u180e\u200b\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"),
        *range(0xE0000, 0xE0080),  # tag characters (explore85 F5, with the soft hyphen, the CGJ and the ALM)
    ]
)


def _without_hidden(value: str) -> str:
    """A name as it shows: the characters that show nothing and could make it pass for another removed."""
    return value.translate(_HIDDEN_IN_NAMES).strip()


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_one_line),
    AfterValidator(_visible),
    AfterValidator(_without_hidden),
    _ONE_LINE_SCHEMA,
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128), AfterValidator(_not_blank)]


def password_weakness_error(password: str, context: Sequence[str]) -> PydanticCustomError | None:
    """The 422 `password_too_weak` of a new password zxcvbn finds guessable (`domain.passwords`), None otherwise:
    checked where the account's words are known (its address and name: a registration's model, the services)."""
    from smartcourse.domain.passwords import refusal, weakness

    reason = weakness(password, context)
    return None if reason is None else rule_error("password_too_weak", refusal(reason), ("password",))


Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(_one_line),
    AfterValidator(_visible),
    AfterValidator(_no_comma),
    _ONE_LINE_SCHEMA,
]
#: The most tags a course carries, and a catalogue filter names; the longest category.
MAX_TAGS = 20
CATEGORY_CHARS = 100
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_distinct_tags)]
Category = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=CATEGORY_CHARS),
    AfterValidator(_one_line),
    AfterValidator(_visible),
    _ONE_LINE_SCHEMA,
]
LessonText = Annotated[str, StringConstraints(min_length=1, max_length=500_000), AfterValidator(_not_blank)]


def _no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL characters: refuse them at the edge with a clear error."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


def _string_schemas(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The string schemas a property's schema holds: itself, its `anyOf` variants, an array's items."""
    found: list[dict[str, Any]] = []
    for schema in [prop, *prop.get("anyOf", [])]:
        if schema.get("type") == "string" and "format" not in schema and "enum" not in schema:
            found.append(schema)
        elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            found.extend(_string_schemas(schema["items"]))
    return found


def _no_nul_in_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The JSON schema of an input model says what `Strict._reject_nul` does: a string without a pattern of its own
    (the one-line fields' excludes NUL already) gets `^[^\\x00]*$` (explore13 F5)."""
    for prop in schema.get("properties", {}).values():
        for string in _string_schemas(prop):
            string.setdefault("pattern", NO_NUL_PATTERN)


#: How a time in a query (`before`, `since`) is read, told in its description: the schema's `date-time` format alone
#: would not say that the server also reads these forms (explore13 F5).
#: `updated_since` of the lists an integration reads night after night (explore68 F4).
UPDATED_SINCE = "only those changed at or after this time (their `updated_at`)"
INSTANT_NOTE = (
    " (ISO 8601 date-time; without an offset it is UTC, a bare date is its midnight UTC, a number is Unix seconds, or"
    " milliseconds above 2e10, as JavaScript's Date.now() gives)"
)


#: How many fields its model lacks an input object may have before it is refused whole, unread: each unknown field is
#: an error of its own, and pydantic and FastAPI spent 0.6 s of CPU listing 111,000 of them (explore44 F2).
EXTRA_FIELDS_READ = 50


class Strict(BaseModel):
    """Input models: unknown fields are errors, and no string may carry a NUL character."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_nul_in_schema)

    @model_validator(mode="before")
    @classmethod
    def _not_too_many_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > EXTRA_FIELDS_READ:
            fields = cls.model_fields
            known = sum(1 for name, f in fields.items() if name in data or (f.alias is not None and f.alias in data))
            if len(data) - known > EXTRA_FIELDS_READ:  # counted by the model's fields, not by the object's keys
                raise PydanticCustomError(
                    "too_many_fields",
                    "the object has {count} fields it does not take (it takes {takes})",
                    {"count": len(data) - known, "takes": ", ".join(fields)},
                )
        return data

    @field_validator("*", mode="after")
    @classmethod
    def _reject_nul(cls, value: Any) -> Any:
        return _no_nul(value)


def _optional_not_nullable(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The JSON schema of an update: a field left out keeps its value, so each is optional (`X | None = None` in
    Python, None meaning "not sent"), but `null` is a value only for the fields in the model's `NULLABLE` (it
    clears them); the server refuses it for the others (422 `invalid_field`, `services.courses.reject_nulls`), so
    the schema does not offer it: `{"type": "string", ...}`, not `anyOf [string, null]` with `default: null`."""
    nullable: frozenset[str] = getattr(model, "NULLABLE", frozenset())
    _no_nul_in_schema(schema, model)
    for name, prop in schema.get("properties", {}).items():
        variants = prop.get("anyOf")
        if name in nullable or not variants:
            continue
        kept = [v for v in variants if v.get("type") != "null"]
        if len(kept) == len(variants):
            continue
        del prop["anyOf"]
        if prop.get("default", ...) is None:
            del prop["default"]
        if len(kept) == 1:
            prop.update({k: v for k, v in kept[0].items() if k not in prop})
        else:
            prop["anyOf"] = kept


class UpdateIn(Strict):
    """A partial update (`PUT` of a course, module, lesson or account): every field optional; `null` allowed only
    for the fields in `NULLABLE`, where it clears the value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_optional_not_nullable)
    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    def null_refused(self) -> str | None:
        """The first field sent as `null` that `null` cannot clear (None: none)."""
        for key in type(self).model_fields:
            if key in self.model_fields_set and key not in self.NULLABLE and getattr(self, key) is None:
                return key
        return None


# --- vocabularies ---------------------------------------------------------------------------
# The values a response field can take, declared as enums in the OpenAPI schema. Those the database constrains match
# its CHECK constraints (tests/unit/test_schema_vocabularies.py compares them).

Role = Literal["student", "instructor", "admin"]
CourseStatus = Literal["draft", "publishing", "published", "archived"]
IndexStatus = Literal["none", "indexing", "ready", "failed"]
LessonType = Literal["text", "video", "quiz"]
SourceType = Literal["lesson", "material"]
EnrollmentStatus = Literal["waitlisted", "pending", "active", "completed", "dropped"]
#: A Temporal run's status (the SDK's `WorkflowExecutionStatus`, lower case); `not_started` while Temporal does not
#: know the id yet, `unavailable` when it did not answer.
WorkflowRunStatus = Literal[
    "not_started",
    "running",
    "completed",
    "failed",
    "canceled",
    "terminated",
    "continued_as_new",
    "timed_out",
    "unavailable",
    "skipped",
]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]
WorkflowKind = Literal["course_publishing", "enrollment", "certificate"]
NotificationKind = Literal[
    "enrollment.welcome",
    "waitlist.released",
    "enrollment.removed",
    "certificate.issued",
    "certificate.revoked",
    "publish_failed",
    "publish_warnings",
    "publish_canceled",
    "waitlist.joined",
    "waitlist.passed_over",
    "publish_completed",
    "quiz.attempts_granted",
]


# --- accounts -------------------------------------------------------------------------------


class _NewAccount(Strict):
    @model_validator(mode="after")
    def _hard_to_guess(self) -> Any:
        error = password_weakness_error(self.password, (self.email, self.full_name))  # type: ignore[attr-defined]
        if error is not None:
            raise error
        return self


def stored_address(typed: str) -> str:
    """An address as a registration stores it (`EmailStr`: email-validator's normalized form, the local part NFC, the
    domain lower case and in Unicode), for the lookups of an address typed by someone (login, `GET /users?email=`,
    the reset e-mail's task): `zoë@xn--exmple-cua.com` is the `zoë@exämple.com` registered (explore65 F13: taken at
    registration, unknown at login). Something that is no address is only made NFC (a login answers it as an unknown
    one)."""
    try:
        return validate_email(typed)[1]
    except PydanticCustomError:
        return unicodedata.normalize("NFC", typed)


#: The scripts whose letters pass for each other's (Cyrillic U+0430 for a Latin "a", Greek U+03BF for an "o",
#: Armenian U+0585 for an "o", Cherokee letters for capitals).
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")
#: Letters of other alphabets that look like Latin ones: a part made only of them reads as a Latin address
#: (an address of Cyrillic U+0430, U+043E, U+0435 reads "aoe@…": explore85 F4).
_LATIN_LOOKALIKES = frozenset("аеорсухіјѕԁԛԝһӏԍкαοιυνκρτχεօսոհյզ")


def _scripts(part: str) -> set[str]:
    return {
        script
        for ch in part
        if ch.isalpha()
        for script in _CONFUSABLE_SCRIPTS
        if unicodedata.name(ch, "").startswith(script + " ")
    }


def _plain_address(address: str) -> str:
    """A new account's address, or an address given to one, is written as it is read: not in compatibility forms
    (a full-width U+FF53 for the "s" of "stua@…" made an account apart from it, and the admin's search for "stua"
    found neither), nor with a part mixing Latin, Cyrillic or Greek letters ("stua@…" with a Cyrillic U+0430 for its
    "a"): explore82 F3. An address
    registered before is still found at login, as stored."""
    if unicodedata.normalize("NFKC", address) != unicodedata.normalize("NFC", address):
        raise PydanticCustomError(
            "address_form", "write the address in its usual characters, not full-width or other compatibility forms"
        )
    local, _, domain = address.rpartition("@")
    for part in (local, *domain.split(".")):
        letters = [ch for ch in part.lower() if ch.isalpha()]
        if len(_scripts(part)) > 1 or (letters and "LATIN" not in _scripts(part) and set(letters) <= _LATIN_LOOKALIKES):
            raise PydanticCustomError(
                "address_scripts",
                "the address mixes letters of different alphabets (Latin, Cyrillic, Greek, Armenian, Cherokee) in one "
                "part, or is written in letters that look like Latin ones",
            )
    return address


#: The address of a new account, or the one an admin gives an account (`_plain_address`).
NewAddress = Annotated[EmailStr, AfterValidator(_plain_address)]


class RegisterIn(_NewAccount):
    email: NewAddress
    password: Password
    full_name: Name
    role: Literal["student", "instructor"]


class UserCreateIn(Strict):
    """`POST /users` (admins): an account made for someone (an HR system's sync: explore68 F1). Without a password,
    its owner is e-mailed an invitation to choose one."""

    email: NewAddress
    full_name: Name
    role: Literal["student", "instructor"] = "student"
    password: Password | None = None

    @model_validator(mode="after")
    def _hard_to_guess(self) -> Any:
        if self.password is not None:
            error = password_weakness_error(self.password, (self.email, self.full_name))
            if error is not None:
                raise error
        return self


class AdminIn(_NewAccount):
    """`smartcourse create-admin`'s account: the rules a registration follows (an admin cannot register)."""

    email: NewAddress
    password: Password
    full_name: Name


class LoginIn(Strict):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    device_token: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None,
        description="The `device_token` an earlier login to this account answered: this device then keeps its own "
        "back-off, so wrong passwords sent from elsewhere do not lock it out. Anything else is ignored.",
    )


class PasswordResetIn(Strict):
    email: EmailStr


class VerifyEmailIn(Strict):
    # Stripped: a code pasted from the e-mail with the blanks or line break around it (explore85 F12).
    token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)] = Field(
        description="The confirmation code the sign-up's e-mail gave (or the link's `{token}`)"
    )


class VerificationResent(BaseModel):
    sent: bool = Field(description="false: the address is confirmed already, nothing was sent")
    message: str


class PasswordResetConfirmIn(Strict):
    token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)] = Field(
        description="The reset code the e-mail gave (POST /auth/password-reset)"
    )
    password: Password


class PasswordResetRequested(BaseModel):
    message: str = Field(description="The same whether or not the address has an account")


class RefreshIn(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    device_token: str | None = Field(
        default=None,
        description="Login only: keep it and send it with this account's next logins from this device (LoginIn). "
        "It grants no access by itself.",
    )


class UserPublic(BaseModel):
    """An account as its owner and admins see it (nobody else reads it: instructors' public profiles are
    InstructorPublic)."""

    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    bio: str | None = None
    is_active: bool = Field(description="false: disabled by an admin (its tokens are refused, it cannot log in)")
    email_verified_at: datetime | None = Field(
        default=None,
        description="when its owner proved the address theirs (the sign-up's e-mailed link, a password reset, an "
        "invitation) or an admin vouched for it; null: not yet (`POST /auth/verify-email/resend`)",
    )
    created_at: datetime
    updated_at: datetime | None = Field(
        default=None, description="its last change (name, bio, password, role, address, enabled or not)"
    )
    erased_at: datetime | None = Field(
        default=None,
        description="Its personal data was erased (`POST /users/{id}/erase`): its address and name are placeholders",
    )


class EraseIn(Strict):
    """`POST /users/{id}/erase`: one's own account needs its password (an admin erasing another's does not)."""

    current_password: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


class AccountErased(BaseModel):
    """What an erasure did: the account's address and name replaced by placeholders, its sessions ended, its live
    enrollments dropped (seats and waitlist places given back), its certificates withdrawn from the public check
    (their PDFs deleted), its assistant conversations and notifications deleted and its questions forgotten."""

    user_id: uuid.UUID
    erased_at: datetime
    enrollments_dropped: int
    certificates_withdrawn: int
    conversations_deleted: int
    notifications_deleted: int


class UserCreated(UserPublic):
    """`POST /users`' answer: the account, and whether its invitation e-mail was queued."""

    invited: bool = Field(
        description="made without a password: an invitation to choose one was queued (valid INVITATION_DAYS); false "
        "with a password given, or when the mail queue did not take it (its owner then uses the password reset)"
    )


class UserUpdated(UserPublic):
    """`PUT /users/{id}`'s answer: the account, and after a change of one's own password a new token pair."""

    tokens: TokenPair | None = Field(
        default=None,
        description="After a change of your own password only: every session of the account ended, this device's "
        "too, and this is its new access and refresh token (its `device_token` is null: keep the one this device "
        "has)",
    )


class UserUpdateIn(UpdateIn):
    NULLABLE = frozenset({"bio"})
    full_name: Name | None = None
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None
    password: Password | None = None
    # Required with `password` when changing your own: a stolen access token must not take over the account.
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    # Admins only: false disables the account and ends its sessions at once.
    is_active: StrictBool | None = None
    # Admins only, not their own: an instructor with courses, or a student with a live enrollment, keeps the role.
    role: Role | None = None
    # Admins only: the account's new address (HR changed it: explore68 F6); its sessions end, its records stay.
    email: NewAddress | None = None


class InstructorPublic(BaseModel):
    id: uuid.UUID
    full_name: str
    bio: str | None
    courses: list[CourseSummary] = Field(
        description="the newest 20 published courses (newest created first, then id): page 1 of "
        "`GET /courses?instructor_id=`, which lists the rest"
    )
    courses_total: int = Field(
        description="how many published courses the instructor has; more than `courses` holds: "
        "`GET /courses?instructor_id=<id>&page=2` on"
    )


# --- courses --------------------------------------------------------------------------------

Level = Literal["beginner", "intermediate", "advanced"]
LEVELS: tuple[str, ...] = get_args(Level)


def _level_filter(value: str | None) -> str | None:
    """A catalogue filter's `level`: one of `Level` in any case (the filters compare without regard to case), blank
    for no filter; anything else is refused, so that a typo does not read as "no such courses"."""
    if value is None or not value.strip():
        return None
    level = value.strip().lower()
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    return level


def _any_case(word: str) -> str:
    """`word` in any case as an ECMA-262 pattern, which has no inline `(?i)`: `[Bb][Ee]...`."""
    return "".join(f"[{ch.upper()}{ch}]" if ch.isalpha() else re.escape(ch) for ch in word)


#: `LevelFilter` as the schema shows it: one of `LEVELS` in any case, or blank (explore13 F5).
LEVEL_FILTER_PATTERN = rf"^\s*({'|'.join(_any_case(level) for level in LEVELS)})?\s*$"
#: `level` as `GET /courses` and `GET /search` take it (422 `validation_error` naming `level` for another value).
LevelFilter = Annotated[
    Annotated[str, StringConstraints(max_length=20), Field(json_schema_extra={"pattern": LEVEL_FILTER_PATTERN})] | None,
    AfterValidator(_level_filter),
]


class CourseIn(Strict):
    title: Title
    description: Annotated[str, StringConstraints(max_length=10000)] = ""
    category: Category
    tags: Tags = []
    level: Level | None = None
    capacity: Annotated[StrictInt, Field(gt=0, le=1_000_000)] | None = None
    prerequisites: Annotated[list[uuid.UUID], Field(max_length=20)] = []
    waitlist_enabled: StrictBool = False


class CourseUpdateIn(UpdateIn):
    NULLABLE = frozenset({"level", "capacity"})
    title: Title | None = None
    description: Annotated[str, StringConstraints(max_length=10000)] | None = None
    category: Category | None = None
    tags: Tags | None = None
    level: Level | None = None
    capacity: Annotated[StrictInt, Field(gt=0, le=1_000_000)] | None = None
    prerequisites: Annotated[list[uuid.UUID], Field(max_length=20)] | None = None
    waitlist_enabled: StrictBool | None = None
    instructor_id: uuid.UUID | None = Field(
        default=None,
        description="admins only: hand the course to another instructor (or admin), e.g. before its trainer's "
        "account is erased; its records, enrolments and certificates stay as they are",
    )


def _is_none(value: Any) -> bool:
    return value is None


# A field left out of the answer when it has no value: a lesson's fields of the other types or of a body the caller
#: may not read, a course's owner-only fields. Every other null is sent as null, as the schema says.
def omitted_when_none() -> Any:
    return Field(default=None, exclude_if=_is_none)


class CourseSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    instructor_id: uuid.UUID
    title: str
    description: str
    category: str
    tags: list[str]
    level: Level | None
    capacity: int | None
    waitlist_enabled: bool
    status: CourseStatus
    content_version: int
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime
    unpublished_changes: bool | None = Field(
        default=None,
        exclude_if=_is_none,
        description="Owner and admin only, on `GET /courses/{id}` and in the owner's `GET /courses?mine=true`: the "
        "working copy (modules, lessons, materials) differs from the live version students see; publish to make it "
        "live",
    )


AvailabilityState = Literal["open", "waitlist", "full", "closed"]


class CourseAvailability(BaseModel):
    """`GET /courses/{id}/availability`: the course's seats as they stand now (read from the database on every call,
    never cached: the catalogue's answers may be minutes old, a seat count would not be true for long)."""

    course_id: uuid.UUID
    state: AvailabilityState = Field(
        description="what `POST /enrollments` does now for a student who meets the prerequisites: `open` admits, "
        "`waitlist` puts on the waitlist, `full` refuses (409 `course_full`), `closed` refuses (not taking "
        "enrollments: archived, or never published)"
    )
    capacity: int | None = Field(description="seats in all; null: no limit")
    seats_taken: int
    seats_left: int | None = Field(description="null: no limit")
    waitlist_enabled: bool
    waitlisted: int = Field(description="students on the waitlist")


class QuizQuestion(Strict):
    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    options: Annotated[
        list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]],
        Field(
            min_length=2,
            max_length=10,
            description="the choices, different from each other whatever their case, spacing and final punctuation",
            json_schema_extra={"uniqueItems": True},
        ),
    ]
    answer: Annotated[StrictInt, Field(ge=0, le=9, description="the right option's index in `options`, from 0")]
    # A generated quiz's question as `POST /ai/generate-quiz` returned it, pasted whole (explore73 F5: its provenance
    # was 422 `extra_forbidden`): accepted, never kept.
    source: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, exclude=True, description="a generated question's source label: accepted, not kept"
    )
    source_chunk_id: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, exclude=True, description="a generated question's source passage: accepted, not kept"
    )

    @model_validator(mode="after")
    def _answer_is_an_option(self) -> QuizQuestion:
        if self.answer >= len(self.options):
            raise ValueError("answer must be the index of one of the options")
        if len({option_key(option) for option in self.options}) < len(self.options):
            raise ValueError("options must differ from each other")
        return self


def _distinct_prompts(questions: list[QuizQuestion]) -> list[QuizQuestion]:
    """No two questions of a quiz ask the same (explore57 F5: the same prompt twice with opposite answers passed only
    in one order; a generated quiz already refused it)."""
    seen: dict[str, int] = {}
    for n, question in enumerate(questions):
        if (first := seen.setdefault(option_key(question.prompt), n)) != n:
            raise ValueError(f"questions {first} and {n} have the same prompt: each question must ask something else")
    return questions


#: A quiz's questions: 1 to 100, no two with the same prompt (whatever its case, spacing and final punctuation).
QuizQuestions = Annotated[
    list[QuizQuestion],
    Field(min_length=1, max_length=100, description="no two with the same prompt (whatever its case and spacing)"),
    AfterValidator(_distinct_prompts),
]


def option_key(option: str) -> str:
    """What makes two quiz options the same to a student: their words whatever their case, spacing and final
    punctuation ("Erosion by waves." and "erosion by waves,": explore42 F4, a generated quiz saved with both, one of
    them right). Punctuation inside stays significant ("C++" and "C#")."""
    # Composed first (NFC: the same letters typed decomposed are the same option) and with the Arabic and
    # full-width question marks and stops among the final punctuation (explore65 F8).
    key = " ".join(unicodedata.normalize("NFC", option).casefold().split())
    return key.rstrip(".,;:!?…。、 ؟؛،\uff1f\uff01\uff0e\uff0c")


#: The key of a model rule's error context naming the error code its request is answered with (`rule_error`).
RULE_CODE = "error_code"
#: ... and the one naming the fields the rule is about (comma-separated), for the answer's `details[].field`.
RULE_FIELDS = "fields"


def rule_error(code: str, message: str, fields: Sequence[str] = ()) -> PydanticCustomError:
    """A model rule's error that names the domain's error `code`: a request refused only by such rules answers 422
    `code` with the rules' messages (`api.app`'s validation handler), as a service raising `Invalid(message,
    code=code)` for the same rule does, not `validation_error`. Validating the model elsewhere, it is a plain
    `value_error` with `message` (no "Value error, " in front). `fields`: what the rule is about, each a `details`
    entry of its own (explore13 F12: "body" let no form highlight `video_url`)."""
    return PydanticCustomError("value_error", message, {RULE_CODE: code, RULE_FIELDS: ",".join(fields)})


def _none_if_empty(value: str | None) -> str | None:
    return value or None


#: A video's transcript: optional, and an empty one is none (`None` in the body, `null` in the answer).
Transcript = Annotated[Annotated[str, StringConstraints(max_length=500_000)] | None, AfterValidator(_none_if_empty)]


#: A video's address: http(s), and no longer than browsers and CDNs take (a 10,000-character URL was stored before).
VideoUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)]


class LessonIn(Strict):
    """A lesson of one of three types; the fields that type needs are required, and the fields of the other types
    are refused whatever their value (`null` too): `FOREIGN`, which an update checks against the fields it sends.
    Either rule broken is 422 `invalid_lesson` naming it, on create as on update."""

    #: The fields a lesson of each type does not take.
    FOREIGN: ClassVar[dict[str, tuple[str, ...]]] = {
        "text": ("video_url", "transcript", "questions", "pass_score"),
        "video": ("content", "questions", "pass_score"),
        "quiz": ("content", "video_url", "transcript"),
    }

    title: Title
    type: LessonType
    content: LessonText | None = None
    video_url: VideoUrl | None = None
    transcript: Transcript = None
    questions: QuizQuestions | None = None
    pass_score: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    position: Annotated[StrictInt, Field(ge=0, le=10_000)] | None = None

    @classmethod
    def foreign_problem(cls, lesson_type: str, sent: set[str]) -> str | None:
        """Why `sent` (the fields a request sent, whatever their value) does not fit a lesson of `lesson_type` ("a text
        lesson does not take transcript"); None when it holds no field of another type."""
        extra = cls.foreign_fields(lesson_type, sent)
        return f"a {lesson_type} lesson does not take {', '.join(extra)}" if extra else None

    @classmethod
    def foreign_fields(cls, lesson_type: str, sent: set[str]) -> list[str]:
        """The fields of `sent` a lesson of `lesson_type` does not take."""
        return [f for f in cls.FOREIGN[lesson_type] if f in sent]

    @model_validator(mode="after")
    def _fields_fit_type(self) -> LessonIn:
        needs = {"text": ("content",), "video": ("video_url",), "quiz": ("questions",)}[self.type]
        missing = [f for f in needs if getattr(self, f) is None]
        if missing:
            raise rule_error("invalid_lesson", f"a {self.type} lesson needs {', '.join(missing)}", missing)
        if problem := self.foreign_problem(self.type, self.model_fields_set):
            raise rule_error("invalid_lesson", problem, self.foreign_fields(self.type, self.model_fields_set))
        return self

    def body(self) -> dict[str, Any]:
        """The document-store body of this lesson (a video without a transcript: `"transcript": None`)."""
        if self.type == "text":
            return {"type": "text", "content": self.content}
        if self.type == "video":
            return {"type": "video", "video_url": str(self.video_url), "transcript": self.transcript}
        return {
            "type": "quiz",
            "questions": [q.model_dump() for q in self.questions or []],
            "pass_score": 70 if self.pass_score is None else self.pass_score,
        }


class LessonUpdateIn(UpdateIn):
    """A lesson's fields to change; a field of another type is refused, `null` too (`LessonIn.FOREIGN`, checked
    before the rule for `null`); a video's transcript is cleared by `null` (or `""`)."""

    NULLABLE = frozenset({"transcript"})
    id: uuid.UUID | None = Field(
        default=None,
        description="the lesson's id, as `GET` shows it: accepted when it is the path's (explore81 F10), else 422",
    )
    type: LessonType | None = Field(
        default=None,
        description="the lesson's type, as `GET` shows it: accepted when unchanged (a lesson sent back as read), "
        "else 422 `invalid_field` (a lesson's type does not change: add one of the new type)",
    )
    title: Title | None = None
    content: LessonText | None = None
    video_url: VideoUrl | None = None
    transcript: Annotated[str, StringConstraints(max_length=500_000)] | None = None
    questions: QuizQuestions | None = None
    pass_score: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    position: Annotated[StrictInt, Field(ge=0, le=10_000)] | None = None
    module_id: uuid.UUID | None = Field(
        default=None,
        description="Move the lesson to this module of the same course (at `position`, else last). It keeps its id, "
        "so students keep their progress on it; deleting and re-creating it would lose it",
    )


class ModuleIn(Strict):
    title: Title
    position: Annotated[StrictInt, Field(ge=0, le=10_000)] | None = None


class ModuleUpdateIn(UpdateIn):
    title: Title | None = None
    position: Annotated[StrictInt, Field(ge=0, le=10_000)] | None = None


class QuizQuestionPublic(BaseModel):
    """A quiz question as it is read: its `answer` only for the course's owner and admins (students answer it)."""

    prompt: str
    options: list[str]
    answer: int | None = Field(
        default=None,
        exclude_if=_is_none,
        description="the right option's index in `options`, from 0: the owner's and admins' view only",
    )


class LessonPublic(BaseModel):
    id: uuid.UUID
    module_id: uuid.UUID
    title: str
    type: LessonType
    position: int
    content: str | None = omitted_when_none()
    video_url: str | None = omitted_when_none()
    transcript: str | None = omitted_when_none()
    # Typed (explore60 F7: an array of free-form objects, the most important student payload hand-written by clients).
    questions: list[QuizQuestionPublic] | None = omitted_when_none()
    pass_score: int | None = omitted_when_none()

    @field_validator("transcript", mode="after")
    @classmethod
    def _no_transcript_is_none(cls, value: str | None) -> str | None:
        # Bodies (and published snapshots) written before a video without a transcript was stored as None hold "".
        return value or None

    @model_serializer(mode="wrap")
    def _video_without_transcript(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo):
        """A video lesson whose body the caller reads (it has its `video_url`; the outline has no body) and that has
        no transcript says `"transcript": null`: a field of its type without a value, not one left out. Unannotated
        return: the serialization schema stays the fields'."""
        out = handler(self)
        if self.type != "video" or self.video_url is None or self.transcript is not None or not isinstance(out, dict):
            return out
        if info.exclude_none or info.include is not None or "transcript" in (info.exclude or ()):
            return out  # asked to leave nulls, or this field, out
        out["transcript"] = None
        return out


class ModulePublic(BaseModel):
    id: uuid.UUID
    title: str
    position: int
    lessons: list[LessonPublic]


class CourseDetail(CourseSummary):
    prerequisites: list[uuid.UUID]
    modules: list[ModulePublic]
    # Owner and admin only: the content index of the live version and what the last publish did.
    index_status: IndexStatus | None = omitted_when_none()
    index_version: int | None = omitted_when_none()
    publish_report: dict[str, Any] | None = omitted_when_none()


class CoursePublishCanceled(CourseSummary):
    """`POST /courses/{id}/publish/cancel`: the course as it is back, with what its owner reads of its index (explore76
    F11: the answer had neither, and a client read the course again to say "canceled, version 1 still live")."""

    index_status: IndexStatus | None = None
    index_version: int | None = None
    publish_report: dict[str, Any] | None = None


class SearchSource(BaseModel):
    type: SourceType
    id: str
    title: str
    location: str


class ContentSearchHit(BaseModel):
    chunk_id: str
    text: str
    score: float
    source: SearchSource
    also_in: list[SearchSource] = Field(
        default_factory=list,
        description="Other sources with this same passage (the same file uploaded twice, under two names): one hit, "
        "not one per copy.",
    )


class ContentSearchResult(BaseModel):
    items: list[ContentSearchHit]
    mode: str
    version: int
    query: str


#: Where a catalogue query matched a course, in this order. `lessons`: the title of a lesson of the live version
#: (public, in the outline); `content`: lesson bodies, transcripts, quiz prompts or materials, never quoted.
MatchedIn = Literal["title", "description", "category", "tags", "lessons", "content"]


class CatalogHit(CourseSummary):
    score: float
    highlights: list[str] = Field(
        description="HTML fragments (escaped, `<b>` marks only) from public fields: the title and description, "
        "a matching lesson title. Never from lesson bodies, quiz prompts or materials (see `matched_in`)."
    )
    matched_in: list[MatchedIn] = Field(
        default_factory=list,
        description="Where the query matched: title, description, category, tags, lessons (a lesson title), "
        "content (the course's lessons or materials, which only enrolled students read: matched, not quoted).",
    )


class CatalogSearchPage(BaseModel):
    items: list[CatalogHit]
    total: int
    page: int
    page_size: int
    query: str
    did_you_mean: str | None = Field(
        default=None,
        description="nothing found: the query with its words no course's title, description, category or tags have "
        "replaced by the nearest they have (`budgt` → `budget`); null otherwise",
    )


class AccountChangeOut(BaseModel):
    """One change an admin made to an account (`GET /users/{id}/changes`)."""

    model_config = ConfigDict(from_attributes=True)
    actor_id: uuid.UUID = Field(description="the admin who made it (the account itself for its own erasure)")
    change: dict[str, Any] = Field(
        description="what changed: `full_name`, `email`, `role`, `is_active` as {from, to}; `password`: reset; `bio`: "
        "changed; `created` or `erased`; `certificate_withdrawn` or `certificate_reissued` (a code, with the `name` it "
        "bore)"
    )
    at: datetime


class AccountChangePage(BaseModel):
    items: list[AccountChangeOut]
    total: int
    page: int
    page_size: int


class UserPage(BaseModel):
    """A page of `GET /users` (admins): accounts, newest first."""

    items: list[UserPublic]
    total: int
    page: int
    page_size: int


class CoursePage(BaseModel):
    items: list[CourseSummary]
    total: int
    page: int
    page_size: int


class Facet(BaseModel):
    value: str = Field(description="as most live courses spell it (the filters match any case)")
    count: int = Field(description="live courses with it")


class CourseFacets(BaseModel):
    """`GET /courses/facets`: what the catalogue's filters can take, with how many live courses each finds (a filter
    sidebar's options: explore78 F12, category and tags are free text and nothing listed them)."""

    categories: list[Facet]
    levels: list[Facet]
    tags: list[Facet] = Field(description="the 200 most used, most used first")
    total: int = Field(description="live courses in all")


class MaterialPublic(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    lesson_id: uuid.UUID | None
    filename: str
    content_type: str
    size: int
    created_at: datetime


class WorkflowStarted(BaseModel):
    workflow_id: str
    status: WorkflowRunStatus


class WorkflowStep(BaseModel):
    name: str
    status: StepStatus
    error: str | None = None
    # What the step did (e.g. {"chunks": 2000, "embedded": 120, "cached": 1880}) or, while it runs,
    # how far it is ({"done": 1200, "total": 2000}); warnings a step reported (a material it skipped).
    detail: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None


class WorkflowStatus(BaseModel):
    workflow_id: str
    kind: WorkflowKind
    status: WorkflowRunStatus
    steps: list[WorkflowStep]
    error: str | None = None
    # What the run is about ("course:<id>", "enrollment:<id>") and the last failure the workers recorded
    # (failed_step, error, trace_id, failures, status, updated_at: see GET /ops/workflows).
    subject: str | None = None
    failure: dict[str, Any] | None = None
    steps_unavailable: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description="why `steps` is empty though the run has steps: no worker answered its steps query in time "
        "(a worker down, restarting or busy; explore40 F6); `status` is still the engine's",
    )


class ErrorBody(BaseModel):
    # Every error body has all four keys, `details` and `trace_id` possibly null: the schema says so, so generated
    # clients do not type them optional and a body that drops one breaks the contract (explore13 F6).
    model_config = ConfigDict(json_schema_extra={"required": ["code", "message", "details", "trace_id"]})

    code: str
    message: str
    details: Any = None
    trace_id: str | None = None  # the request's trace (also the X-Trace-Id header)


InstructorPublic.model_rebuild()


# --- enrollment and progress ----------------------------------------------------------------


class EnrollIn(Strict):
    course_id: uuid.UUID
    student_id: uuid.UUID | None = Field(
        default=None,
        description="An admin enrolls this student (by the same rules; the history's actor is the admin). Omitted: "
        "the calling student",
    )


class DiscardIn(Strict):
    """`POST /ops/dead-letters/{id}/discard`: why the dead letter is set aside (kept with it)."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class EnrollmentPublic(BaseModel):
    id: uuid.UUID
    student_id: uuid.UUID
    course_id: uuid.UUID
    status: EnrollmentStatus
    attempt: int
    workflow_id: str | None
    position: int | None = None
    created_at: datetime
    admitted_at: datetime | None
    activated_at: datetime | None
    completed_at: datetime | None
    dropped_at: datetime | None
    completion_revoked_at: datetime | None = Field(
        default=None,
        description="when an admin revoked this completion's certificate: it meets no prerequisite any more, and "
        "the student may enroll in the course again (a new attempt)",
    )
    percent: float | None = Field(
        default=None,
        description="Share of the course's published lessons completed (100 once completed), as "
        "GET /enrollments/{id} answers it, in every answer that carries an enrollment.",
    )


class MyCourse(EnrollmentPublic):
    """An enrollment as `GET /enrollments/my-courses` lists it: with its course's title and, once the course is
    completed and the certificate issued, the certificate. Its workflow's steps are on `GET /enrollments/{id}`
    (`EnrollmentDetail`): one call to Temporal per enrollment, not made for a whole page."""

    course_title: str
    certificate: CertificatePublic | None = Field(
        default=None, description="once the course is completed and the certificate issued"
    )


class EnrollmentDetail(MyCourse):
    steps: list[WorkflowStep] = []
    workflow_status: WorkflowRunStatus | None = None
    steps_unavailable: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description="why `steps` is empty though the workflow has steps: no worker answered in time",
    )


class RosterEntry(BaseModel):
    """One enrollment of a course as its instructor sees it: who, where they are, since when (no e-mail address)."""

    enrollment_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    status: EnrollmentStatus
    attempt: int
    position: int | None = Field(default=None, description="a waitlisted enrollment's place in the queue, from 1")
    admitted_at: datetime | None
    activated_at: datetime | None
    completed_at: datetime | None
    dropped_at: datetime | None
    completion_revoked_at: datetime | None = Field(
        default=None, description="its certificate was revoked: the completion stands, the student may take it again"
    )
    dropped_by: Literal["student", "instructor", "admin", "system"] | None = Field(
        default=None,
        description="a dropped enrollment: who ended it (`student`: themselves; `instructor` or `admin`: a removal, "
        "which bars the student from enrolling again until an admin enrolls them; `system`: the course's archive)",
    )
    drop_reason: str | None = Field(default=None, description="a dropped enrollment: the reason its history keeps")
    created_at: datetime
    updated_at: datetime | None = Field(
        default=None, description="its status's last change (admitted, activated, completed, dropped, revoked...)"
    )
    percent: float | None = Field(
        default=None,
        description="share of the live version's lessons completed, as `GET /enrollments/{id}` says it (100 once "
        "completed, 0 while waitlisted)",
    )
    last_activity_at: datetime | None = Field(
        default=None, description="the latest lesson completed or quiz answered in this enrollment; null: none yet"
    )


class RosterPage(BaseModel):
    items: list[RosterEntry]
    total: int
    page: int
    page_size: int


class HistoryEntry(BaseModel):
    from_status: EnrollmentStatus | None
    to_status: EnrollmentStatus
    actor: Literal["student", "instructor", "admin", "system"]
    actor_id: uuid.UUID | None
    reason: str | None
    at: datetime


class LessonProgressPublic(BaseModel):
    lesson_id: uuid.UUID
    module_id: uuid.UUID
    title: str
    type: LessonType
    status: Literal["not_started", "attempted", "completed"] = Field(
        description="`attempted`: a quiz submitted in this enrollment and not passed yet"
    )
    best_score: int | None = Field(default=None, description="a quiz's best score in this enrollment, passed or not")
    attempts: int | None = Field(
        default=None,
        description="the attempts a quiz has used of its limit (QUIZ_MAX_ATTEMPTS), across the student's "
        "enrollments in the course as the limit counts them: on the quiz as it is now (a rewritten quiz starts "
        "again); null for the other lessons",
    )
    attempts_left: int | None = Field(
        default=None,
        description="a quiz not passed yet: the attempts still allowed (0: locked until the instructor changes the "
        "quiz); null otherwise",
    )
    completed_at: datetime | None = None


class ModuleProgressPublic(BaseModel):
    module_id: uuid.UUID
    title: str
    percent: float
    completed: bool


class ProgressPublic(BaseModel):
    enrollment_id: uuid.UUID
    status: EnrollmentStatus
    percent: float
    lessons: list[LessonProgressPublic]
    modules: list[ModuleProgressPublic]


class QuizAttemptPublic(BaseModel):
    """One graded submission of a quiz in an enrollment (`GET /enrollments/{id}/attempts`): what was answered, its
    score, and whether it answered the quiz as it is now."""

    lesson_id: uuid.UUID
    quiz_title: str | None = Field(description="the quiz's title in the live version; null: it left the course")
    attempt: int = Field(description="its number among the student's attempts on this quiz, across enrollments")
    score: int = Field(description="percent of the questions answered right")
    passed: bool
    answers: list[int] = Field(description="the option chosen for each question, from 0, as submitted")
    submitted_at: datetime
    on_the_quiz_as_it_is: bool = Field(
        description="it answered the quiz as the live version has it; false: the quiz was rewritten since (its "
        "progress and attempt limit count the attempts on the quiz as it is), or it left the course"
    )


class QuizGrantIn(Strict):
    """`POST /enrollments/{id}/quiz-attempts`: more attempts on one quiz for one student (explore77 F1)."""

    lesson_id: uuid.UUID = Field(description="the quiz lesson")
    extra: StrictInt = Field(default=1, ge=1, le=20, description="attempts added to the student's limit on this quiz")
    reason: str | None = Field(
        default=None, max_length=500, description="why, for the student's notice and the enrollment's history"
    )


class QuizGrantPublic(BaseModel):
    """A grant of attempts, and where the student stands on the quiz with it."""

    id: uuid.UUID
    enrollment_id: uuid.UUID
    lesson_id: uuid.UUID
    quiz_title: str
    extra: int
    reason: str | None
    granted_at: datetime
    max_attempts: int = Field(description="the student's limit on this quiz now: QUIZ_MAX_ATTEMPTS plus every grant")
    attempts_used: int = Field(description="attempts on the quiz as it is, across the student's enrollments")
    attempts_left: int
    answers_shown: bool = Field(
        description="the student's last attempt was told which answers were right (the feedback once no attempt "
        "was left): a retake then tests little; rewrite the quiz to test anew"
    )


class QuizSubmitIn(Strict):
    answers: Annotated[list[Annotated[StrictInt, Field(ge=0, le=100)]], Field(min_length=1, max_length=100)]
    version: StrictInt | None = Field(
        default=None,
        ge=1,
        description="The course's `content_version` the quiz was read from. Another version live whose quiz differs: "
        "409 `quiz_changed`, and no attempt is used; a version never published: 422 `unknown_version`. Left out: "
        "graded against the live version.",
    )


class QuizResult(BaseModel):
    score: int = Field(description="this attempt's score, in percent of the quiz's questions answered right")
    passed: bool = Field(description="score reached pass_score")
    attempt: int = Field(description="this attempt's number on this quiz (1 for the first)")
    pass_score: int = Field(description="the score, in percent, that passes the quiz")
    percent: float = Field(
        description="the enrollment's progress after this attempt: percent of the course's lessons done (the quiz "
        "counts once passed), not the quiz's score"
    )
    # Attempts still allowed on this quiz (QUIZ_MAX_ATTEMPTS); per-question correctness only once the quiz
    # is passed or no attempt is left, so the answers cannot be read off the feedback.
    attempts_left: int | None = None
    correct: list[bool] | None = None


# --- certificates ---------------------------------------------------------------------------


class CertificatePublic(BaseModel):
    id: uuid.UUID
    enrollment_id: uuid.UUID
    course_id: uuid.UUID
    student_name: str
    course_title: str
    code: str
    issued_at: datetime
    pdf_ready: bool = Field(
        description="the PDF is rendered; once the certificate is revoked only an admin downloads it (its owner: 409 "
        "`certificate_revoked`)"
    )
    verify_url: str
    revoked_at: datetime | None = Field(default=None, description="revoked by an admin: no longer valid")
    revoked_reason: str | None = None
    withdrawn_at: datetime | None = Field(
        default=None,
        description="withdrawn from the public check, at its holder's request or with their account's erasure: no "
        "longer verifiable, no PDF",
    )
    reissued_at: datetime | None = Field(
        default=None, description="last re-issued under its holder's corrected name (same code); null: as issued"
    )

    @classmethod
    def of(cls, cert: Any, base_url: str, reader: Any = None) -> CertificatePublic:
        """`reader` (a Principal), when given: why it was revoked is for its student and admins only, as the public
        check says nothing of it (its course's instructor reads the certificate, and the enrollment that carries it:
        explore39 F3)."""
        told = reader is None or reader.is_admin or reader.user_id == cert.student_id
        return cls(
            id=cert.id,
            enrollment_id=cert.enrollment_id,
            course_id=cert.course_id,
            student_name=cert.student_name,
            course_title=cert.course_title,
            code=cert.code,
            issued_at=cert.issued_at,
            pdf_ready=bool(cert.pdf_key),
            verify_url=f"{base_url}/certificates/verify/{cert.code}",
            revoked_at=cert.revoked_at,
            revoked_reason=cert.revoked_reason if told else None,
            withdrawn_at=cert.withdrawn_at,
            reissued_at=cert.reissued_at,
        )


class CertificateVerification(BaseModel):
    """The public check of a code: `valid` for a certificate in force; `revoked` (not valid: who and what it was
    for, and when it was revoked, never why), `withdrawn` (by its holder, or their account erased: nothing else is said)
    and `unknown` (no certificate has this code: mistyped or forged)."""

    valid: bool
    status: Literal["valid", "revoked", "withdrawn", "unknown"] = Field(
        description="`withdrawn`: withdrawn at its holder's request or with their account's erasure; nothing else "
        "is said of it"
    )
    student_name: str | None = None
    course_title: str | None = None
    issued_at: datetime | None = None
    revoked_at: datetime | None = None
    # Who stands behind it (explore59 F2: a verifier could not tell a university's course from one anyone made): the
    # course, its page, and its instructor's name now.
    course_id: uuid.UUID | None = None
    course_url: str | None = Field(
        default=None,
        description="The course in the API (`GET /courses/{id}`), while it is live: absent once it is archived",
    )
    instructor_name: str | None = Field(
        default=None, description="The course's instructor, as their account was named when the certificate was issued"
    )
    reissued_at: datetime | None = Field(
        default=None,
        description="Re-issued under its holder's corrected name on this date (the name above is the corrected one)",
    )


class RevokeIn(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


# --- notifications --------------------------------------------------------------------------


class ConversationSummary(BaseModel):
    """One of the caller's assistant conversations (`POST /ai/ask` `conversation_id` resumes it)."""

    id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    first_question: str = Field(description="its first question, at most 200 characters")
    questions: int = Field(description="how many questions were asked in it")
    created_at: datetime
    updated_at: datetime = Field(description="its last turn; it expires ASSISTANT_HISTORY_DAYS after")


class ConversationPage(BaseModel):
    items: list[ConversationSummary]
    total: int
    page: int
    page_size: int


class CitationSource(BaseModel):
    """The cited source as search hits describe theirs: a lesson or a material, by id."""

    type: SourceType
    id: str
    title: str
    location: str


class Citation(BaseModel):
    index: int
    chunk_id: str
    source: str  # the label "Title — Location" (kept for existing clients)
    source_ref: CitationSource | None = None
    quote: str


class ConversationMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(description="the question as asked, the answer as given")
    at: datetime = Field(description="a question: when it was asked; an answer: when it was given")
    type: Literal["answer", "clarify", "refuse"] | None = Field(
        default=None, description="an answer's type, as `done` gave it (null: a question, or an answer before 0034)"
    )
    citations: list[Citation] | None = Field(
        default=None,
        description="an answer's citations as `done` gave them, so its [n] markers resolve (the sources may have "
        "left the live course since); null: a question, or an answer before 0034",
    )
    interaction_id: uuid.UUID | None = Field(
        default=None,
        description="the interaction that asked or answered it (`GET /ai/interactions/{id}`: why a question has no "
        "answer); null for a message before migration 0034, or a question before the unanswered ones were kept",
    )
    answered: bool | None = Field(
        default=None,
        description="a question: whether an answer follows it (false: the stream was cancelled or failed; ask "
        "again); null for an answer",
    )


class ConversationDetail(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    created_at: datetime
    updated_at: datetime
    messages: list[ConversationMessage] = Field(description="every turn, oldest first")


class NotificationsRead(BaseModel):
    marked: int = Field(description="how many notifications this request marked read (0: none was unread)")


class NotificationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: NotificationKind
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None = None

    @field_validator("data", mode="after")
    @classmethod
    def _without_mail_internals(cls, value: dict[str, Any]) -> dict[str, Any]:
        # `attachment_*` tell the e-mail task which stored file to attach (a file-store key): nothing for a client.
        return {k: v for k, v in value.items() if not k.startswith("attachment_")}


# --- recommendations (issue #10) ------------------------------------------------------------------

RecommendationReason = Literal["next_step", "similar_content", "co_enrolled", "popular"]


class RecommendedCourse(BaseModel):
    """A course to take, why (the strongest signal) and the blended score (higher is better)."""

    course: CourseSummary
    reason: RecommendationReason
    score: float
    signals: dict[str, float]


class RecommendationList(BaseModel):
    items: list[RecommendedCourse]


class ReviewSection(BaseModel):
    """A passage of the course's live version to go back to."""

    chunk_id: str
    title: str
    location: str
    source_type: SourceType
    source_id: str


class ReviewItem(BaseModel):
    kind: Literal["quiz_failed", "rushed_lesson", "question_asked"]
    lesson_id: uuid.UUID | None = None
    title: str
    detail: dict[str, Any]
    sections: list[ReviewSection]


class EnrollmentReview(BaseModel):
    enrollment_id: uuid.UUID
    course_id: uuid.UUID
    version: int
    items: list[ReviewItem]


class DetachedFrom(BaseModel):
    """The lesson a material was attached to until it was deleted."""

    lesson_id: uuid.UUID
    title: str


class MaterialItem(MaterialPublic):
    """A material in `GET /courses/{id}/materials`; `created_at` is when it was uploaded."""

    # Part of the course's published version (content_version): what enrolled students download and what search
    # and the assistant cite. False for an upload since the last publish (the next publish includes it).
    published: bool
    # The owner's and admins' view: the lesson this material was attached to until that lesson (or its module) was
    # deleted, which made it the course's own; null otherwise, and for students.
    detached_from: DetachedFrom | None = None


class MaterialList(BaseModel):
    """A page of `GET /courses/{id}/materials` (the catalogue's page fields: docs/api.md, "Pagination")."""

    items: list[MaterialItem]
    total: int
    page: int
    page_size: int


# --- analytics ------------------------------------------------------------------------------------


def _iso_day(value: Any) -> Any:
    """A day written as the analytics docs say, `YYYY-MM-DD`: pydantic also took "2026-12-06T00:00:00" (a date-time at
    midnight) for a day (explore30 F11)."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise PydanticCustomError("iso_day", "a day is written YYYY-MM-DD")
    return value


#: A query's day (`from`, `to` of the analytics series).
IsoDay = Annotated[date, BeforeValidator(_iso_day)]


# --- analytics' answers (typed for clients: explore60 F7, explore61 F7; docs/analytics.md says what each means) ---


class PopularCourse(BaseModel):
    course_id: str
    title: str | None = Field(description="its title now (null: the course is gone)")
    status: str | None = Field(description="its status now (an archived course keeps the enrollments it had)")
    enrollments: int | None = Field(default=None, exclude_if=_is_none, description="admissions (popular_courses)")
    lessons_completed: int | None = Field(
        default=None, exclude_if=_is_none, description="lessons completed and quizzes passed (by engagement)"
    )


class NewEnrollmentWindows(BaseModel):
    day: int = Field(description="admissions today (UTC)")
    week: int = Field(description="admissions in the last 7 days, today included")
    month: int = Field(description="admissions in the last 30 days, today included")


class AiGenerated(BaseModel):
    summary: int
    objectives: int
    quiz: int
    explain: int


class AiByType(BaseModel):
    contextual: int = Field(description="questions answered from the course")
    generated: int = Field(description="an instructor's summaries, objectives, quizzes and explanations")


class AiUsage(BaseModel):
    asked: int
    answered: int
    clarified: int
    refused: int
    failed: int
    cancelled: int
    generated: AiGenerated
    by_type: AiByType


class WorkflowIssues(BaseModel):
    failed_workflows: int
    retrying_workflows: int
    dead_letters: int
    failed_events: int
    failed_tasks: int
    retrying_tasks: int
    dead_lettered_tasks: int
    outbox_retrying: int
    outbox_unpublished: int
    outbox_oldest_age_seconds: int
    enrollments_awaiting_workflow: int


class AnalyticsDashboard(BaseModel):
    """`GET /analytics/dashboard`: the ten metrics, from the counters."""

    total_students: int
    registered_students: int
    total_instructors: int
    registered_instructors: int
    total_courses_published: int
    new_enrollments: NewEnrollmentWindows
    completion_rate: float = Field(description="completed / admitted x 100 (0.0 with no admission)")
    avg_time_to_complete_hours: float | None = Field(description="null when nothing was completed")
    popular_courses: list[PopularCourse]
    popular_courses_by_engagement: list[PopularCourse]
    avg_courses_per_student: float
    ai_assistant_usage: AiUsage
    workflow_issues: WorkflowIssues


class EnrollmentPeriod(BaseModel):
    period: date = Field(description="the period's first UTC day (a week starts on Monday)")
    count: int


class EnrollmentSeries(BaseModel):
    """`GET /analytics/enrollments`: admissions per period from `from` to `to`."""

    model_config = ConfigDict(populate_by_name=True)
    interval: Literal["day", "week", "month"]
    from_: date = Field(alias="from", description="first UTC day of the series")
    to: date = Field(description="last UTC day of the series, inclusive")
    total: int
    series: list[EnrollmentPeriod]


class ReconcileMismatch(BaseModel):
    key: str
    counted: float
    source: float


class Reconcile(BaseModel):
    """`GET /analytics/reconcile`: each metric counted and recomputed from the source tables; 0 drift = agree."""

    drift: dict[str, float] = Field(description="per metric, in its own unit")
    total_drift: float
    counted: dict[str, Any]
    source: dict[str, Any]
    mismatches: dict[str, list[ReconcileMismatch]] = Field(description="per counter, its first mismatching keys")
    events_pending: int = Field(description="events not relayed yet: drift may be theirs")


class CourseEnrollmentCounts(BaseModel):
    admitted: int = Field(description="= pending + active + completed + dropped")
    waitlisted: int
    pending: int
    active: int
    completed: int
    dropped: int = Field(description="admissions given up")
    left_waitlist: int = Field(description="dropped without ever being admitted (left the waitlist, or released)")


class CourseAnalytics(BaseModel):
    """`GET /analytics/course/{id}`: one course's figures, from the source tables."""

    course_id: uuid.UUID
    title: str
    status: str
    enrollments: CourseEnrollmentCounts
    learners: int = Field(description="distinct students ever admitted")
    completion_rate: float
    avg_time_to_complete_hours: float | None
    lessons_completed: int
    new_enrollments: list[EnrollmentPeriod] = Field(description="per day, the last 30 days")
    ai_assistant_usage: AiUsage


class StudentEnrollmentCounts(BaseModel):
    admitted: int = Field(description="= pending + active + completed + dropped, as the course's (explore77 F11)")
    waitlisted: int
    pending: int
    active: int
    completed: int
    dropped: int
    left_waitlist: int


class StudentAnalytics(BaseModel):
    """`GET /analytics/student/{id}`: one student's figures, from the source tables."""

    student_id: uuid.UUID
    enrollments: StudentEnrollmentCounts
    completion_rate: float = Field(description="completed of admitted, in percent, as the course's")
    live_courses: int
    courses_completed: int
    avg_time_to_complete_hours: float | None
    lessons_completed: int
    last_activity_at: datetime | None
    ai_assistant_usage: AiUsage


class CompletionPeriod(BaseModel):
    period: date = Field(description="the period's first UTC day (a week starts on Monday)")
    completed: int = Field(description="enrollments completed in the period (its days within from..to)")
    avg_time_to_complete_hours: float | None = Field(
        description="mean completed_at - activated_at of those completions; null when there is none"
    )


class CompletionSeries(BaseModel):
    """`GET /analytics/completions`: the series covers `from`..`to`; the figures beside it are all time (the
    dashboard's, which reconcile checks), whatever the range (docs/analytics.md)."""

    model_config = ConfigDict(populate_by_name=True)
    interval: Literal["day", "week", "month"]
    from_: date = Field(alias="from", description="first UTC day of the series")
    to: date = Field(description="last UTC day of the series, inclusive")
    completed: int = Field(description="completed enrollments, all time (not only from..to: the series has those)")
    admitted: int = Field(description="admitted enrollments, all time")
    completion_rate: float = Field(
        description="completed / admitted x 100, all time: the dashboard's completion_rate (0.0 with no admission)"
    )
    avg_time_to_complete_hours: float | None = Field(
        description="mean completed_at - activated_at over every completion, all time; null when there is none"
    )
    series: list[CompletionPeriod]
