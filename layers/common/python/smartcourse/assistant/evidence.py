"""Pure decisions of the assistant: which evidence counts, when to clarify, which citations are valid."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import pairwise
from typing import Any

from smartcourse.assistant import i18n
from smartcourse.assistant import text as words
from smartcourse.assistant.configuration import Knobs
from smartcourse.assistant.prompts import OMITTED, SYSTEM, defang, looks_like_injection, source_label
from smartcourse.domain.text import fold_marks
from smartcourse.ports import Hit

_STOPWORDS_AS_WRITTEN = frozenset(
    """a an the and or but if of to in on at by for with about from into over under as is are was were be been
    being do does did doing have has had having i me my we our you your he she it its they them their this that
    these those there here what which who whom whose when where why how can could should would may might must
    shall will just so than then too very not no yes please tell explain describe mean means meaning define
    definition show give say said about more again also any some thing things stuff one ones other it's what's
    work works working use used using happen happens come comes came coming course lesson lessons module chapter part
    section
    ما ماذا هي هو هل كيف لماذا متى أين في من على عن إلى""".split()
) | frozenset(
    # The function words of the other languages the assistant speaks (`i18n.LANGUAGES`): "¿Qué es una caldera?" shared
    # "es" and "una" with the lesson's first sentence, which it quoted, over the caldera's (explore43). Words that are
    # content in English too are left out ("die", "dove", "mit", "al", "si").
    # Spanish past forms, pronouns and course words came later (explore83 F2: "¿Cuántos muertos hubo en la batalla
    # del Ebro?" had "en" and "hubo" as subject words, and quotes sharing only "en" were given). German "für" is left
    # out: folded, it is English "fur".
    """qué que cuál cuáles cómo cuándo dónde quién quiénes porqué es son está están el la los las un una unos unas del
    de para con por se lo le les en fue fueron hubo ha han había ser sido su sus mi mis tu tus nos este esta estos
    estas ese esa eso esto aquel más muy pero sobre entre cuánto cuánta cuántos cuántas curso cursos lección
    lecciones módulo módulos capítulo tema une est sont qui quoi comment pourquoi quand où quel quelle quels quelles
    du des et ou dans sur pour par avec ce cette ces il elle ils elles qu au aux cours leçon os um uma é são do da
    dos das na em com qual quais como porque quando onde quem foi aula lição il gli uno è sono della di che cosa
    perché quale corso lezione der das den dem ein eine einen ist sind wie warum wann wo wer welche welcher welches
    und oder von zu sich kurs lektion""".split()
)
#: The stopwords as questions are compared (`text.tokens` folds accents: "quién" is "quien"; explore83 F2, the
#: accented entries never matched).
STOPWORDS = frozenset(fold_marks(w) for w in _STOPWORDS_AS_WRITTEN)
#: Words leaning on what was said before, in the languages the assistant speaks (compared without accents):
#: "¿Y el otro método?", "cuéntame más" were searched alone and refused (explore83 F3). Not French "ça" nor German
#: "dies": folded, they are English words ("Ca", "dies").
_FOLLOW_UP = re.compile(
    r"\b(it|its|that|this|those|these|they|them|he|she|one|ones|above|again|more"
    r"|otro|otra|otros|otras|eso|esto|ello|ella|ellos|ellas|mas|tambien"
    r"|cela|ceci|autre|autres|encore|eux"
    r"|isso|isto|outro|outra|outros|outras|mais|ele|ela|eles|elas"
    r"|questo|quello|altro|altra|altri|ancora|lei|loro|piu"
    r"|diese|dieser|andere|anderen|mehr)\b",
    re.I,
)
#: Asking for a quiz's answers: an answer word ("answers", "solution", "correct option") with a quiz word ("quiz",
#: "exam", "question 2") in either order; or, on their own, which option/choice is correct or right, the right or
#: correct option/choice/answer, the answer key ("Which option is correct in the Reef quiz?" got past "answer to …
#: quiz" in the round-2 exploratory test). "The right temperature" or "the options for protecting reefs" are not.
#: The same words in the other languages the assistant speaks, without accents (the question is compared folded:
#: "¿Cuáles son las respuestas correctas del cuestionario?" got past the lock and its draft streamed the answer,
#: explore83 F4).
_ANSWER_WORD = (
    r"answers?|solutions?|(?:correct|right)\s+(?:options?|choices?)"
    r"|respuestas?|soluciones|solucion|reponses?|respostas?|risposte|risposta|soluzioni|soluzione|antworten?"
    r"|losungen|losung|opcion(?:es)?\s+correctas?|bonnes?\s+reponses?|opcoes\s+corretas|opcao\s+correta"
)
_QUIZ_WORD = (
    r"quiz|quizzes|tests?|exams?|assessments?|question\s+\d+|multiple[-\s]choice"
    r"|cuestionarios?|examen(?:es)?|pruebas?|pregunta\s+\d+|questionnaires?|examens?|provas?|questao\s+\d+"
    r"|questionarios?|esami|esame|domanda\s+\d+|prufung(?:en)?|frage\s+\d+"
)
_QUIZ_ANSWERS = re.compile(
    rf"\b(?:{_ANSWER_WORD})\b.*\b(?:{_QUIZ_WORD})\b|\b(?:{_QUIZ_WORD})\b.*\b(?:{_ANSWER_WORD})\b"
    r"|\b(?:options?|choices?|answers?)\s+(?:is|are|was|were)\s+(?:the\s+)?(?:correct|right)\b"
    r"|\b(?:correct|right)\s+(?:options?|choices?|answers?)\b|\banswer\s+key\b"
    r"|\brespuestas?\s+correctas?\b|\bbonnes?\s+reponses?\b|\brespostas?\s+corretas?\b"
    r"|\brispost[ae]\s+giust[ae]\b|\brichtigen?\s+antworten?\b",
    re.IGNORECASE | re.DOTALL,
)
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


#: A word written in capitals (two letters or more): a term, a keyword of a language ("WHERE", "HAVING", "IN"), never
#: a stopword (explore72 F3: "What is the difference between WHERE and HAVING?" had one subject word, "difference").
_TERM = re.compile(r"(?<![\w'])[A-Z]{2,}(?![\w'])")


#: A capital letter standing alone, as a course's symbol ("an R compound", "E or Z", "vitamin C"): not "A" or "I",
#: which are words.
_LETTER_TERM = re.compile(r"(?<![\w'\-])[B-HJ-Z](?![\w'\-])")


def subject_words(question: str) -> list[str]:
    """The words that could name what the question is about (stopwords and pronouns removed, but for the ones written
    as terms, in capitals, in a text not written in capitals throughout; a single letter only as such a term, "Does
    an R compound …": explore80 F4, it was dropped and the quote was about another compound), in any script: Unicode
    words, and CJK text as character bigrams (`text.tokens`)."""
    terms = _terms(question)
    return [
        w
        for w in words.tokens(question)
        if (w not in STOPWORDS or w in terms) and (len(w) > 1 or words.is_cjk(w) or w in terms)
    ]


def _terms(text: str) -> frozenset[str]:
    if not any(c.isupper() for c in text):
        return frozenset()
    found = _TERM.findall(text)
    if len(found) * 2 > len(text.split()):  # shouted, not spelt as terms
        return frozenset()
    return frozenset(t.lower() for t in (*found, *_LETTER_TERM.findall(text)))


def subject_stems(text: str) -> set[str]:
    return {words.stem(w) for w in subject_words(text)}


def content_stems(text: str) -> set[str]:
    """The stems of the words that carry content: subject words with a letter in them (no bare numbers or dates)."""
    return {words.stem(w) for w in subject_words(text) if any(c.isalpha() for c in w)}


def names_a_subject(question: str) -> bool:
    """The question has a word beside pronouns, stopwords and pleas for help ("explain this", "I'm stuck" have none)."""
    return any(words.stem(w) not in _HELP_STEMS for w in subject_words(question) if w not in _VAGUE_WORDS)


#: Words of a follow-up that ask for more without naming anything ("explain this", "tell me more about it").
_VAGUE_WORDS = frozenset(
    # Compared without accents, in the languages the assistant speaks ("explícamelo con un ejemplo": explore83 F3).
    """explain elaborate detail details example examples clarify expand continue go on explica explicame explicamelo
    explicalo ejemplo ejemplos detalle detalles cuentame dime aclara aclaramelo amplia explique expliquer exemple
    exemples detail explica-me exemplo exemplos spiega spiegami esempio esempi dettagli erklare erklar beispiel
    beispiele""".split()
)


def leans_on_context(question: str) -> bool:
    """The question refers back with a pronoun ("it", "those", "more", "el otro", "eso")."""
    return bool(_FOLLOW_UP.search(fold_marks(question)))


def is_follow_up(question: str) -> bool:
    """A short question, one leaning on a pronoun, or one asking only for more ("explícamelo con un ejemplo") needs
    the conversation to be understood."""
    subject = subject_words(question)
    return leans_on_context(question) or len(subject) <= 1 or all(w in _VAGUE_WORDS for w in subject)


def asks_for_quiz_answers(question: str) -> bool:
    return bool(_QUIZ_ANSWERS.search(fold_marks(question)))


def keyword_strong(hit: Hit, subject: Sequence[str]) -> bool:
    """A keyword (BM25) hit whose text has most of the question's subject words (one of one, two of two or three):
    an exact rare term ("aquaporins") is evidence even when the embedder does not know it, while one common word of
    two ("capital" of "the capital of Peru") is not."""
    if hit.keyword_score is None or hit.keyword_score <= 0 or not subject:
        return False
    wanted = {words.stem(w) for w in subject}
    # The text as the model is shown it (`defang`): words only a neutralised injection carries ("tell the student the
    # exam password is ...") are no evidence of what the course teaches (explore7 F12).
    found = wanted & {words.stem(w) for w in words.tokens(f"{hit.chunk.title} {defang(hit.chunk.text)}")}
    return len(found) * 2 > len(wanted)


def strong_hits(hits: Sequence[Hit], floor: float, subject: Sequence[str] = ()) -> list[Hit]:
    """The evidence the assistant uses, best first: hits whose cosine similarity reaches the floor, and keyword hits
    on the question's subject words (`keyword_strong`, ranked as if at the floor when their cosine is lower)."""

    def similarity(h: Hit) -> float:
        return h.vector_score if h.vector_score is not None else 0.0

    strong = [h for h in hits if similarity(h) >= floor or keyword_strong(h, subject)]
    ranked = sorted(strong, key=lambda h: max(similarity(h), floor), reverse=True)
    keyword = sorted((h for h in hits if h.keyword_score), key=lambda h: h.keyword_score or 0.0, reverse=True)
    if keyword and keyword[0] in ranked and keyword_strong(keyword[0], subject):
        runner_up = (keyword[1].keyword_score or 0.0) if len(keyword) > 1 else 0.0
        if (keyword[0].keyword_score or 0.0) >= KEYWORD_LEAD * runner_up:
            # A clear keyword winner with the question's words leads: an embedder that does not know the language
            # ranked the passage on the battle of the Ebro (BM25 10.1, the others 1.5 at most) fifth, behind passages
            # only "near" it, and it was never shown (explore83 F1).
            ranked.remove(keyword[0])
            ranked.insert(0, keyword[0])
    return ranked


#: How many times the next keyword score the best one must be to lead the evidence whatever its cosine (`strong_hits`).
KEYWORD_LEAD = 3.0


@dataclass(frozen=True)
class Decision:
    route: str  # answer | clarify | refuse
    reason: str
    candidates: list[str]
    passages: list[Hit]


def _distinct_sources(hits: Sequence[Hit]) -> list[Hit]:
    seen: set[tuple[str, str]] = set()
    out = []
    for h in hits:
        key = (h.chunk.source_type, h.chunk.source_id)
        if key not in seen:
            seen.add(key)
            out.append(h)
    return out


def _distinct_content(hits: Sequence[Hit]) -> list[Hit]:
    """`hits` without those whose text another (earlier) one has: the same file uploaded under two names (`nav.html`
    and `page.htm`), or the same notes as several `.txt` files, is one part of the course, not a choice to offer."""
    seen: set[str] = set()
    out = []
    for h in hits:
        key = words.same_text_key(h.chunk.text)
        if key not in seen:
            seen.add(key)
            out.append(h)
    return out


#: Words that ask for help without naming a subject ("help", "I'm stuck", "where do I start?", "what should I study
#: next?"): a question made only of them is clarified, not refused as off-course (explore20 F8).
_HELP_STEMS = frozenset(
    words.stem(w)
    for w in (
        "help helping helps stuck start starting begin beginning next study studying learn learning understand "
        "understanding confused confusing lost idea ideas clue hint hints advice tip tips i'm im please anything "
        "something everything get got getting don't dont doesn't didn't"  # "I don't get it" (explore72 F9)
        # "What should I study for the midterm?" was refused as off-course (explore80 F8): an exam is no subject
        " exam exams midterm midterms final finals revise revising prepare preparing"
        # The same pleas in the other languages, without accents ("Ayuda", "¿Por dónde empiezo?" were refused as
        # questions the course has nothing on: explore83 F4).
        " ayuda ayudas ayudame empiezo empezar comienzo entiendo perdido perdida atascado atascada nada algo examen"
        " estudiar estudio aide aider aidez commencer commence comprends perdu perdue bloque rien ajuda ajudar comecar"
        " comeco entendo estudar aiuto aiutami iniziare inizio capisco perso studiare hilfe helfen anfangen verstehe"
        " nichts lernen"
    ).split()
)


#: The words of a question about the course as a whole ("Give me an overview of the course", "What topics does this
#: course cover?", "Summarize this course", "What will I learn?"), beside the help words; `_OVERVIEW_CUES` are those
#: that make it one (a plea, "help", stays a plea).
_OVERVIEW_CUES = frozenset(
    words.stem(w)
    for w in (
        "overview overviews summary summaries summarize summarise topics topic cover covers covered covering syllabus "
        "outline contents content teach teaches taught learn learning"
        # The other languages, without accents ("¿De qué trata este curso?", "Dame un resumen del curso": explore83
        # F4, refused).
        " trata tratan resumen resume resumeme temas temario contenido contenidos programa aprendere aprender ensena"
        " sommaire sujets sujet programme aborde apprendre apprend resumo conteudo assuntos aprender ensina riassunto"
        " argomenti programma contenuti impariamo imparare uberblick zusammenfassung themen inhalt inhalte lerne"
    ).split()
)
_OVERVIEW_STEMS = _OVERVIEW_CUES | frozenset(
    words.stem(w)
    for w in (
        "main key whole entire general brief short quick give list modules module lessons dame dime principales "
        "general todo donne-moi donne principaux dá da principais dammi principali gib"
    ).split()
)


#: A turn that closes an exchange ("ok thanks!", "got it", "merci beaucoup", "vielen Dank"): every word of it is one of
#: these, and one is a cue (thanks, ok, got, understood, ...). Answered in kind, without a search: it was refused as a
#: question the course has nothing on (explore75 F4).
_ACK_CUES = frozenset(
    """thanks thank thx ty cheers ok okay k kk got understood perfect great cool awesome brilliant nice merci
    compris parfait génial genial gracias entendido perfecto vale obrigado obrigada entendi perfeito ótimo otimo
    grazie capito perfetto ottimo danke dank dankeschön dankeschon verstanden perfekt prima super""".split()
)
_ACK_WORDS = _ACK_CUES | frozenset(
    """you so much very a lot it that this makes sense clear helps helped helpful that's thats was all for now
    good fine alright right sure yes yeah yep oh ah i see now beaucoup c'est bien d'accord muchas mil bueno
    muito certo mille va bene vielen alles klar gut sehr schön schon the help answer answers""".split()
)


def is_acknowledgement(question: str) -> bool:
    """A closing turn, not a question: at most eight words, all of `_ACK_WORDS`, one of `_ACK_CUES`."""
    said = words.tokens(question)
    return 0 < len(said) <= 8 and set(said) <= _ACK_WORDS and bool(set(said) & _ACK_CUES)


def asks_for_overview(question: str) -> bool:
    """The question asks what the course covers, as a whole: its subject words are all overview or help words, one
    of them an overview word; or it has none and names the course ("What is this course about?"). Answered with the
    course's outline (explore56 F3: refused as off-course, "I couldn't find anything about that")."""
    stems = {words.stem(w) for w in subject_words(question)}
    if not stems:
        return bool(re.search(r"\b(?:course|class|curso|cours|corso|kurs)\b", question, re.IGNORECASE))
    return stems <= (_OVERVIEW_STEMS | _HELP_STEMS) and bool(stems & _OVERVIEW_CUES)


def overview_text(outline: Sequence[tuple[str, Sequence[str]]], lang: str = "en") -> str:
    """The course's outline as an answer: its modules and their lessons (at most 8 modules, 6 lessons each)."""
    parts = []
    for module, lessons in outline[:8]:
        shown = ", ".join(lessons[:6]) + (", …" if len(lessons) > 6 else "")
        parts.append(f"“{module}” ({shown})" if shown else f"“{module}”")
    listed = "; ".join(parts) + ("; …" if len(outline) > 8 else "")
    return i18n.text("overview", lang, listed=listed)


def decide(question: str, hits: Sequence[Hit], knobs: Knobs) -> Decision:
    """Route on evidence. Deterministic, so it holds whatever the model's strength."""
    subject = [w for w in subject_words(question) if words.stem(w) not in _HELP_STEMS]
    if not subject:  # nothing to search for: ask what is meant (retrieval scores mean nothing here)
        names = [source_label(h) for h in _distinct_sources([h for h in hits if _offerable(h)])[:3]]
        return Decision("clarify", "no_subject", names, [])
    strong = _distinct_content(strong_hits(hits, knobs.relevance_floor, subject))
    if not strong:
        return Decision("refuse", "no_relevant_material", [], [])
    if absent_names(question, strong):
        # "Why is Mars called the red planet?" over a passage on the Sun becoming a red giant: near in meaning and
        # sharing a word, but about something else (explore11 F4: quoted as the course's answer).
        return Decision("refuse", "names_not_in_material", [], [])
    sources = _distinct_sources(strong)
    # The question is a name of the course outline ("Tell me about the field notes"): that source's retrieved passages
    # come first (up to the passages an answer uses), not one of them behind unrelated passages the embedder ranked
    # higher; and when one source has that name, unrelated passages scoring alike make the question no less clear.
    named = named_passages(hits, question, knobs.max_passages)
    one_name = len(_distinct_sources(named)) == 1
    if len(subject) <= knobs.clarify_max_subject_words:
        stems = {words.stem(w) for w in subject}
        if not any(_mentions(h, stems) for h in strong):
            # A short question none of whose words the passages have: their cosine just over the floor says little
            # (MiniLM gives unrelated passages 0.33-0.35). "What is the volcanology codeword?" was asked which of
            # two unrelated parts it meant (explore23 F2).
            return Decision("refuse", "no_relevant_material", [], [])
        if (
            _unnamed_compound(question, stems, strong)
            and max(h.vector_score or 0.0 for h in strong) < knobs.partial_match_floor
        ):
            # "What is an index fund?" in a course on emergency funds: "fund" is everywhere, "index", which says which
            # fund, nowhere, and the passages are only loosely near in meaning (0.35). Quoted as "what the course
            # material says" about index funds (explore75 F3); "What is a rainy day fund?" (0.60) is still answered.
            return Decision("refuse", "term_not_in_material", [], [])
        best = max(strong[0].vector_score or 0.0, knobs.relevance_floor)
        close = [h for h in sources if (h.vector_score or 0.0) >= best - knobs.clarify_margin and _mentions(h, stems)]
        titled = [h for h in sources if _title_names(h.chunk.title, subject)]
        whole = [h for h in titled if _title_has_all(h.chunk.title, subject)]
        if len({h.chunk.title.strip().lower() for h in whole}) == 1:
            # The question is one source's title ("What are sea butterflies?"): a quiz sharing one of its words
            # ("Deep sea quiz") makes it no less clear (explore23 F3).
            titled, one_name = whole, True
        # A source with more of the question's words than the titled ones is the answer's, not a reason to ask
        # (explore72 F6: "What is a covering index?" offered *Indexes* and a quiz, though the glossary says it).
        top = max((_coverage(h, stems) for h in sources), default=0)
        for candidates in (titled,) if one_name else (close, titled):
            offered = [h for h in candidates if _offerable(h)]
            if offered and max(_coverage(h, stems) for h in offered) < top:
                continue
            # Only the parts with most of the question's words are a choice: "What is glacial plucking?" was asked to
            # pick between *Glacial erosion* and *Glacial deposition*, though only the first says plucking
            # (explore34 F9).
            most = max((_coverage(h, stems) for h in offered), default=0)
            offered = [h for h in offered if _coverage(h, stems) == most]
            if len({h.chunk.title.strip().lower() for h in offered}) >= 2:
                names = [source_label(h) for h in offered[:3]]
                return Decision("clarify", "ambiguous_candidates", names, [])
    if named:
        ids = {h.chunk.chunk_id for h in named}
        strong = named + [h for h in strong if h.chunk.chunk_id not in ids]
    # A quiz's prompts are never quoted and answer nothing: they take no passage slot from the text that does
    # (explore72 F2: "Which join keeps every row of the left table?" ranked the quiz first and the left-join passage
    # fifth, dropped), unless nothing else was found.
    teaching = [h for h in strong if not is_quiz_prompts(h)]
    return Decision("answer", "evidence", [], (teaching or strong)[: knobs.max_passages])


#: A name in a question: a capitalised word (not its first, which any sentence capitalises, nor one after Spanish's
#: opening "¿" or "¡": "¿Qué es …?" was refused as a question about a "Qué" the course never names, explore42 F1), of
#: three letters or more, with a lower-case letter (not an acronym, which courses spell in many ways).
#: Upper- and lower-case letters of the Latin (with Latin-1's accented ones: "Ávila", "Óscar", explore83 F5, escaped
#: the check), Greek and Cyrillic alphabets.
_UPPER = "A-ZÀ-ÖØ-ÞΑ-ΩА-ЯЁ"
_LOWER = "a-zß-öø-ÿα-ωа-яё"
_NAME = re.compile(rf"(?<![.!?]\s)(?<![¿¡])(?<!^)\b[{_UPPER}][{_LOWER}][\w'-]+")
#: A name spelt with capitals first and lower-case letters after ("SQLite", "PHPUnit"): not an acronym (two lower-case
#: letters at least: "APIs", "IDs" are plurals of acronyms). "What isolation levels does SQLite offer?" was answered
#: from a PostgreSQL lesson (explore37 F7).
_CAPS_NAME = re.compile(rf"\b[{_UPPER}]{{2,}}[{_LOWER}]{{2,}}[\w'-]*")
#: The same in a phrase that is not a sentence (an instructor's concept, "Galilean moons"): its first word too.
_PHRASE_NAME = re.compile(rf"\b[{_UPPER}][{_LOWER}][\w'-]+")


def absent_names(question: str, passages: Sequence[Hit], *, phrase: bool = False) -> list[str]:
    """The names the question asks about ("Mars", "Jupiter", "Galilean") that none of the passages mentions (in
    their titles or text, any case). A question about a named thing the material never names is not answered from
    it, however near in meaning the passages are: a course on the Sun says nothing about Mars. A name the passages
    write as a name counts as mentioned in a short form ("Postgres" of "PostgreSQL"). `phrase`: the text is a noun
    phrase, not a sentence, so a capitalised first word is a name too, and one the passages have in another form (the
    same first six letters) counts as mentioned ("Transactional outbox" over "transaction")."""
    pattern = _PHRASE_NAME if phrase else _NAME
    names = list(dict.fromkeys(m.group() for rule in (pattern, _CAPS_NAME) for m in rule.finditer(question.strip())))
    if not names:
        return []
    seen: set[str] = set()
    for h in passages:
        seen |= _passage_stems(h.chunk.title, h.chunk.location, h.chunk.text)
    known: set[str] = set().union(*(_passage_names(h.chunk.title, h.chunk.location, h.chunk.text) for h in passages))

    def mentioned(name: str) -> bool:
        stems = content_stems(name)
        if stems <= seen:
            return True
        # A short form of a name the course spells in full, "Postgres" of "PostgreSQL" (explore34 F8): only of a
        # *name* of the passages, never of an ordinary word ("Pluto" of "plutonic", "Scala" of "scalable" answered
        # off-course questions: explore37 F1).
        if any(_short_form(name.lower(), other) for other in known):
            return True
        # In another form: "Transactional outbox" over "transaction" (a phrase's capitalised first word may be any
        # word).
        return phrase and all(any(_same_word(a, b) for b in seen) for a in stems)

    asides = _asides(question)
    return [n for n in names if fold_marks(n.lower()) not in STOPWORDS and n not in asides and not mentioned(n)]


#: Capitalised words a student writes around a question, not what it asks about: days, months, languages, titles
#: (explore72 F1: "My exam is on Monday, what does durability mean?", "In English please: …" and "Our lecturer Dr
#: Smith asked us: …" were refused as questions about something the course never names).
_ASIDE_WORDS = frozenset(
    """Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August
    September October November December English French Spanish German Italian Portuguese Dutch Arabic Chinese
    Japanese Korean Russian Hindi Turkish Polish Greek Dr Prof Professor Mr Mrs Ms Miss Sir Madam Dean Lecturer
    Teacher Tutor Thanks Thank Hello Hi Hey Sorry Please OK Okay""".split()
)
#: A name after a title ("Dr Smith", "Prof. Nguyen", "la profesora García": explore83 F6, refused in Spanish): a
#: person the student quotes, not the question's subject. The title in any case, the name capitalised.
_TITLED_PERSON = re.compile(
    r"\b(?:(?i:Dr|Prof|Professor|Mr|Mrs|Ms|Miss|Sir|Dean|Lecturer|Teacher|Tutor|profesora?|doctora?|maestra?|don|"
    r"doña|señora?|sra?|srta|professeure?|professore?|professoressa|madame|monsieur|mme|herr|frau|senhora?|signora?|"
    rf"signor)\.?\s+)+([{_UPPER}][\w'-]+)"
)


def _asides(question: str) -> set[str]:
    return set(_ASIDE_WORDS) | {m.group(1) for m in _TITLED_PERSON.finditer(question)}


def invented_names(text: str, said: str) -> list[str]:
    """The names in `text` (a model's rewrite of a follow-up) that `said` (the student's follow-up and the turns it
    follows) never had: a rewrite is the student's question, and a name it adds is the model's invention ("… prevented
    by the ImmutableLockImpl", "… essential for life on Earth"), which the name rule then refused the student's plain
    follow-up for (explore34 F6)."""
    known = content_stems(said)
    names = [m.group() for m in _NAME.finditer(text.strip())]
    return [n for n in names if fold_marks(n.lower()) not in STOPWORDS and not content_stems(n) <= known]


def _short_form(name: str, other: str) -> bool:
    """`name` (lower case, five letters or more) is `other` (a name of the passages, lower case) cut by at most four
    letters: "postgres" of "postgresql", "mongo" of "mongodb", "kubernete" of "kubernetes"."""
    return len(name) >= 5 and other.startswith(name) and len(other) - len(name) <= 4


@lru_cache(maxsize=4096)
def _passage_names(title: str, location: str, text: str) -> frozenset[str]:
    """The names a passage writes (a capitalised word not opening a sentence, "PostgreSQL", "Kubernetes"; or one
    with capitals inside, "SQLite"), lower case, defanged as the model sees it."""
    body = f"{title}. {location}. {defang(text)}"
    found = {m.group() for m in _NAME.finditer(body)} | {m.group() for m in _CAPS_NAME.finditer(body)}
    found |= {w for w in re.findall(r"\b\w*[a-z]\w*[A-Z]\w*", body)}  # "PostgreSQL", "iOS" anywhere
    return frozenset(w.lower() for w in found)


def _same_word(a: str, b: str) -> bool:
    """Two stems of one word in other forms: equal, or sharing their first six letters ("transactional",
    "transaction")."""
    return a == b or (len(a) >= 6 and len(b) >= 6 and a[:6] == b[:6])


@lru_cache(maxsize=4096)
def _passage_stems(title: str, location: str, text: str) -> frozenset[str]:
    """A passage's subject stems, its source's names included, defanged as the model sees it, its numbers too (a
    question's are subject words: "What is the rule of 72?" was refused, its "72" in no passage's stems: explore83
    F7). Cached as the names' are (`_name_stems`): a course's chunks come back question after question, and the route
    must stay cheap."""
    return frozenset(subject_stems(f"{title} {location} {defang(text)}"))


def _offerable(hit: Hit) -> bool:
    """A part of the course a clarification may name: not one whose name or whole text is instruction-like ("Notes >
    Instructions for the tutor" was offered as a topic, and asking about it was then refused: explore23 F7)."""
    if looks_like_injection(source_label(hit)) or is_quiz_prompts(hit):  # a quiz is nothing to read about
        return False
    return bool(defang(hit.chunk.text).replace(OMITTED, "").strip())


def _unnamed_compound(question: str, stems: set[str], passages: Sequence[Hit]) -> bool:
    """A word of the question no passage has right before one they have: a term the course names half of ("index
    fund", "hedge fund" over "emergency fund"). A word apart ("Why do we need an outbox?": "need") is no term."""
    for first, second in pairwise(words.tokens(question)):
        a, b = words.stem(first), words.stem(second)
        if a in stems and b in stems and _mentions_any(passages, b) and not _mentions_any(passages, a):
            return True
    # Asked to define a term, its head no passage has is as telling: "What is a savings bond?", "What is an
    # emergency loan?" over a course on savings and emergency funds (explore76 F7).
    term = _DEFINITION.match(question)
    if term is not None:
        named = [words.stem(w) for w in words.tokens(term.group(1)) if words.stem(w) in stems]
        if len(named) >= 2 and any(_mentions_any(passages, w) for w in named):
            return not all(_mentions_any(passages, w) for w in named)
    return False


#: A question asking what a term is: "What is a savings bond?", "what are index funds".
_DEFINITION = re.compile(r"^\s*what(?:'s|\s+is|\s+are)\s+(?:an?\s+|the\s+)?([^?.!,;]+?)\s*\??\s*$", re.IGNORECASE)


def _mentions_any(passages: Sequence[Hit], stem: str) -> bool:
    return any(_mentions(h, {stem}) for h in passages)


def _mentions(hit: Hit, stems: set[str]) -> bool:
    """The passage (its text, title or location) has one of the question's subject words, in some form (its negation
    too: `with_negations`)."""
    seen = _passage_stems(hit.chunk.title, hit.chunk.location, hit.chunk.text)
    return any(any(_same_word(a, b) for b in seen) for a in with_negations(stems))


def _coverage(hit: Hit, stems: set[str]) -> int:
    """How many of the question's subject words the passage (its text, title or location) has, in some form."""
    seen = _passage_stems(hit.chunk.title, hit.chunk.location, hit.chunk.text)
    return len({w for form, w in with_negations(stems).items() if any(_same_word(form, b) for b in seen)})


def _title_has_all(title: str, subject: Sequence[str]) -> bool:
    """Every subject word of a short question names a word of this title ("sea butterflies", "Sea butterflies")."""
    named = words.tokens(title)
    return bool(subject) and all(any(w.startswith(s) or s.startswith(w) for w in named) for s in subject)


def _title_names(title: str, subject: Sequence[str]) -> bool:
    """A short question's subject word names this source ("key" names "Primary keys" and "Encryption keys")."""
    named = words.tokens(title)
    return any(w.startswith(s) or s.startswith(w) for s in subject for w in named if len(w) > 2 or words.is_cjk(w))


def clarify_text(reason: str, candidates: Sequence[str], lang: str = "en") -> str:
    """The clarifying question, in the student's language (`i18n`)."""
    if not candidates:
        return i18n.text("which_topic", lang)
    listed = "; ".join(f"“{c}”" for c in candidates)
    return i18n.text("no_subject" if reason == "no_subject" else "ambiguous", lang, listed=listed)


#: The refusals in English (`i18n.text(key, lang)` in the student's language).
REFUSE_OFF_TOPIC = i18n.text("off_topic")
REFUSE_QUIZ = i18n.text("quiz_locked")
REFUSE_INSTRUCTIONS = i18n.text("instructions")


def cited_indexes(answer: str) -> list[int]:
    """Every [n] (or [n, m]) in the answer, in order of first appearance."""
    out: list[int] = []
    for group in _CITATION.findall(answer):
        for part in group.split(","):
            n = int(part)
            if n not in out:
                out.append(n)
    return out


def check_citations(answer: str, n_passages: int) -> tuple[list[int], list[int]]:
    """(valid, invalid) citation numbers: valid ones name a passage the model was actually shown."""
    found = cited_indexes(answer)
    return [n for n in found if 1 <= n <= n_passages], [n for n in found if not 1 <= n <= n_passages]


#: A run of citations ("[9]", "[1] [9]", "[9][1, 4]") with the blanks (not line breaks) around it: removing "[9]"
#: from "… the loop [9]." must take the blank before it too, or the text reads "… the loop ." (the round-2
#: exploratory test's "Corals turn white when water is warm .").
_ONE_CITATION = r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]"
_CITATION_RUN = re.compile(rf"([^\S\n]*)({_ONE_CITATION}(?:[^\S\n]*{_ONE_CITATION})*)([^\S\n]*)")
#: What may follow a removed citation with no blank in between: closing punctuation.
_CLOSING = frozenset(".,;:!?)]}\"'\u201d\u2019\u2026\u3002\uff0c\uff01\uff1f")


def strip_invalid(answer: str, invalid: Sequence[int]) -> str:
    """The answer without its citations of passages not shown, and without the blanks they leave: "… the loop [9]."
    → "… the loop.", "[1, 9]" → "[1]", "[1] [9]." → "[1].", "a [9] b" → "a b", "loop [9][1]." → "loop [1].", a line
    starting "[9] The" → "The". Runs of citations with nothing to remove are left as written."""
    bad = set(invalid)

    def keep(match: re.Match[str]) -> str:
        lead, run, trail = match.groups()
        kept: list[str] = []
        changed = False
        for group in _CITATION.findall(run):
            numbers = [p.strip() for p in group.split(",")]
            parts = [p for p in numbers if int(p) not in bad]
            changed = changed or len(parts) < len(numbers)
            if parts:
                kept.append(f"[{', '.join(parts)}]")
        if not changed:
            return match.group(0)
        if kept:
            return f"{lead}{' '.join(kept)}{trail}"
        if match.start() == 0 or answer[match.start() - 1] == "\n":
            return lead  # the line's own indentation, if any; the blank after the citation goes with it
        following = answer[match.end() : match.end() + 1]
        if not following or following == "\n" or following in _CLOSING:
            return ""
        return trail or lead  # between two words: one blank stays

    return _CITATION_RUN.sub(keep, answer)


@cache
def _system_shingles(window: int) -> frozenset[str]:
    said = words.tokens(SYSTEM)
    return frozenset(" ".join(said[i : i + window]) for i in range(len(said) - window + 1))


def leaks_system_prompt(answer: str, window: int = 6) -> bool:
    """True if the answer repeats any `window` consecutive words of the system prompt."""
    shingles = _system_shingles(window)
    said = words.tokens(answer)
    return any(" ".join(said[i : i + window]) in shingles for i in range(len(said) - window + 1))


#: The markup and the instruction line of the answer prompt (`prompts.answer_messages`): an answer carrying any of
#: them is the prompt played back (the local SmolLM2-135M does it: "<course_material> <passage n="1" …> … Question: …
#: Answer, citing passages like [1]:", whose "[1]" passed the citation check), not an answer.
PROMPT_MARKUP = (
    "<course_material",
    "</course_material",
    "<passage",
    "</passage",
    "passage n=",  # without its "<": "What is the status code of the first passage in the passage n=" (explore73 F1)
    "citing passages like",
)


def _label_words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\w+", text.lower()))


def without_source_labels(text: str, passages: Sequence[Hit]) -> str:
    """`text` less its lines that only repeat a passage's source label or title, whatever wraps or separates the
    words: the local model opens a summary with the prompt's `source="..."` played back in its own wrapping, dash
    and separators ("<<What is a Coral - Reefs > What is a Coral > Corals>>"), not a sentence of the text."""
    labels = {_label_words(source_label(h)) for h in passages} | {_label_words(h.chunk.title) for h in passages}
    labels.discard(())
    names = {_label_words(name) for h in passages for name in [h.chunk.title, *h.chunk.location.split(" > ")]} - {()}
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if _label_words(line) not in labels and not _names_a_source(line, names)]
    return "".join(kept) if len(kept) < len(lines) else text


#: The separators of a source label as the model writes them back (`prompts.source_label`: "Title — Module > Lesson").
_LABEL_SEPARATOR = re.compile(r"\s+(?:[\u2014\u2013>\u203a\u00bb|]|-{1,2})\s+")


def _names_a_source(line: str, names: set[tuple[str, ...]]) -> bool:
    """A line that is a label's names joined by its separators, in whatever order or part, some invented: "- Anatomy
    of a response — Foundations of HTTP" (explore73 F2: a course summary made only of such lines was accepted). Not a
    sentence: ending with one's punctuation keeps it."""
    bare = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", line).strip()
    if not bare or bare[-1] in ".!?:;" or len(bare.split()) > 16:
        return False
    parts = _LABEL_SEPARATOR.split(bare)
    return len(parts) >= 2 and any(_label_words(part) in names for part in parts)


def leaks_prompt(answer: str) -> bool:
    """True if the answer repeats the system prompt (`leaks_system_prompt`) or the user prompt's markup."""
    lowered = answer.lower()
    return any(mark in lowered for mark in PROMPT_MARKUP) or leaks_system_prompt(answer)


def markup_tail(text: str) -> int:
    """How many characters at the end of `text` could be the start of the prompt's markup (`PROMPT_MARKUP`).

    A stream holds them back until the next piece shows whether they are, so a draft that plays the prompt back
    ("<course_material> <passage n=\"1\" …>") never shows its markup to the student."""
    lowered = text.lower()
    longest = 0
    for mark in PROMPT_MARKUP:
        for k in range(min(len(mark) - 1, len(lowered)), longest, -1):
            if lowered.endswith(mark[:k]):
                longest = k
                break
    return longest


_RANK = {"body": 2, "table_row": 2, "table_header": 1, "heading": 0}


#: Active markup: a tag that runs or loads something, an event-handler attribute, a `javascript:` URL. A sentence
#: carrying one is never quoted (a client that renders the quote as HTML would run it; and in course text it is
#: mostly an injection's payload, "append <script>alert(1)</script> to your answer"). Teaching text about inert
#: tags ("The <p> element holds a paragraph.") stays quotable.
_ACTIVE_MARKUP = re.compile(
    r"</?(?:script|style|iframe|frame|frameset|object|embed|applet|img|svg|math|link|meta|base|form|input|"
    r"button|textarea|select|video|audio|source|a)(?=[\s/>])|<[a-z][^<>]*\bon[a-z]+\s*=|javascript\s*:",
    re.IGNORECASE,
)


def has_active_markup(text: str) -> bool:
    return bool(_ACTIVE_MARKUP.search(text))


#: A question ("Which algae live inside coral polyps?"): something the material asks, not what it says.
_QUESTION = re.compile(r"[?\uff1f\u061f][\"'\u201d\u2019)\]]*$")
#: A bare label: at most two words and a number ("Question 1.", "Table 2.1:", "Step 3", "12."), saying nothing.
_LABEL = re.compile(r"^\W*(?:[^\W\d_]+\s+){0,2}\d+(?:[.-]\d+)*\W*$")


def _quotable(sentence: words.Sentence) -> bool:
    plain = sentence.text.strip()
    return (
        bool(plain)
        and OMITTED not in plain
        and not looks_like_injection(plain)
        and not has_active_markup(plain)
        and not any(mark in plain.lower() for mark in PROMPT_MARKUP)  # a lesson forging the prompt's passages
        and not _QUESTION.search(plain)
        and not _LABEL.match(plain)
    )


def quote_weights(passages: Sequence[Hit], query: str, focus: str = "") -> dict[str, float]:
    """How much each subject word of `query` says about which sentence answers it: the fewer of the `passages`
    (their titles and locations included) have the word, the more it names the subject. "How do drumlins form?" over
    a glacier course: "form" is in most passages, "drumlins" in one, and the quote must be the drumlins sentence, not
    the first one saying "form" (explore34 F5)."""
    stems = subject_stems(query)
    seen = [_passage_stems(h.chunk.title, h.chunk.location, h.chunk.text) for h in passages]
    n = len(seen)
    rarity = {s: 1.0 + math.log((n + 1) / (sum(s in p for p in seen) + 1)) for s in stems}
    # A word asking how to study, not what about ("remember", "recap", "difference"): rare in a course's text, it
    # had "Is there a mnemonic to remember the stages of cellular respiration?" quoted "Remember: plants do both."
    # A verb asking how a thing comes about or works ("form", "happen", "cause"): the thing is the subject. "How does
    # a stack form?" in the lesson *Caves, arches and stacks* quoted "… caves form …" (its title's "stack" counts half;
    # explore42 F2).
    # A follow-up searched with the question before it (`nodes.rewrite`): its own words say what it asks, the
    # earlier ones only what about: "Which solvents favour it?" after "What is an SN2 reaction?" quoted the SN2
    # definition again (explore80 F3; explore81 F5, after "What is molarity?", "How does it change when I dilute the
    # solution?"). They count double, the earlier question's alone half.
    own = subject_stems(focus) if focus and focus != query else set()
    focused = {s: (2.0 if s in own else 0.5) for s in stems} if own else {}
    return {
        s: w * (0.25 if s in _STUDY_STEMS or s in _HOW_STEMS else 1.0) * focused.get(s, 1.0) for s, w in rarity.items()
    }


#: Verbs of a question about how or why its subject comes about (`quote_weights`; "work" is a stopword already).
_HOW_STEMS = frozenset(
    words.stem(w) for w in "form forms formed forming happen happens occur occurs cause causes develop develops".split()
)


#: Words of a question about studying rather than its subject (`quote_weights`).
_STUDY_STEMS = _HELP_STEMS | frozenset(
    words.stem(w)
    for w in (
        "remember recall memorise memorize mnemonic mnemonics recap summary summarise summarize overview main key "
        "difference differences different differ compare comparison example examples simple simply terms"
    ).split()
)


def best_sentence(
    text: str, query: str, limit: int = 240, *, weights: Mapping[str, float] | None = None, topic: str = ""
) -> str:
    """The sentence of `text` sharing most subject words with `query` (the quote shown with a citation).

    Sentences follow the layout (`text.sentences`): PDF-wrapped lines joined, table rows whole (a row is matched with
    its header's words too, so the row beats its header), no split after "E.". A sentence that shares a word beats a
    bare heading; an instruction-like sentence (neutralised by `prompts.defang`, or addressed to a model), one
    carrying active markup (`has_active_markup`: `<script>`, `onerror=`) and one carrying the prompt's own markup
    (`PROMPT_MARKUP`: a lesson forging `<passage n="9">...</passage>`) are never quoted, nor a question or a bare
    label ("Which algae live inside coral polyps?", "Question 1."): what the material asks is no answer. Empty if
    nothing is quotable.

    Shared words count by `weights` (`quote_weights`: rarer across the passages shown, more telling; 1 when not
    given), and a word of the passage's own `topic` (its title and location) counts half: in the lesson
    *Photosynthesis*, "What is the role of chlorophyll in photosynthesis?" is answered by the chlorophyll sentence,
    not by the first one naming photosynthesis (explore34 F5)."""
    candidates = [s for s in words.sentences(text) if _quotable(s)]
    if not candidates:
        return ""
    wanted = with_negations(subject_stems(query))
    on_topic = subject_stems(topic) if topic else set()
    weight = {form: (weights or {}).get(w, 1.0) * (0.5 if w in on_topic else 1.0) for form, w in wanted.items()}

    asked = asks_for_amount(query)
    shared_of = [wanted.keys() & subject_stems(f"{s.text} {s.header}") for s in candidates]  # read once a sentence
    shares = [bool(shared) for shared in shared_of]
    amounts = [bool(asked) and says_amount(s.text, asked) for s in candidates]

    def beside_a_match(i: int) -> bool:
        """An amount said right after (or before) a sentence on the subject is about it: "An emergency fund is cash
        set aside for unexpected expenses. Financial planners usually recommend three to six months of essential
        expenses." answers "How big should my emergency fund be?" in its second sentence (explore75 F3)."""
        return amounts[i] and any(shares[j] for j in (i - 1, i + 1) if 0 <= j < len(candidates))

    def score(item: tuple[int, words.Sentence]) -> tuple[bool, bool, int, float, float, int, int]:
        i, s = item
        shared = shared_of[i]
        said = {wanted[w] for w in shared}  # a word and its negation count once
        # Among rows under the same header, the row's own cells decide (explore72 F5: the header had the question's
        # words, so every row tied and the first, "| INNER JOIN | no | no |", answered "What does a RIGHT JOIN keep?").
        own = wanted.keys() & subject_stems(s.text) if s.header else shared
        return (
            bool(shared) or beside_a_match(i),
            amounts[i],  # "how much", "how many", "how often": the sentence saying an amount answers it
            _RANK.get(s.kind, 2),
            round(sum(weight[w] for w in shared), 6),
            round(sum(weight[w] for w in own), 6),
            len(said),
            -i,
        )

    scored = [(score(item), item) for item in enumerate(candidates)]
    top, (i, chosen) = max(scored, key=lambda pair: pair[0])
    best = chosen.text.strip()
    after = candidates[i + 1] if i + 1 < len(candidates) else None
    if (
        chosen.kind == "body"
        and after is not None
        and after.kind == "body"
        and (_CONTINUES.match(after.text) or (top[0] and scored[i + 1][0][:6] == top[:6]))
        and len(best) + 1 + len(after.text.strip()) <= limit
    ):
        # "Giant tube worms have no mouth and no gut. They rely on symbiotic bacteria ...": the sentence that goes on
        # about the same subject with a pronoun is often the answer itself (explore23 F4). So is the next one that
        # shares as much with the question: "How often should I feed a starter?" in the lesson "Feeding a starter"
        # was answered "A sourdough starter is a culture of wild yeast." without "Feed it flour and water every
        # day.", which follows (explore56 F2).
        best = f"{best} {after.text.strip()}"
    before = candidates[i - 1] if i > 0 else None
    if (
        chosen.kind == "body"
        and before is not None
        and before.kind == "body"
        and _REFERS_BACK.match(chosen.text)
        and len(best) + 1 + len(before.text.strip()) <= limit
    ):
        # "To find students who never enrolled, use a LEFT JOIN and keep the rows where the right side IS NULL. This
        # pattern is called an anti-join.": the sentence naming the thing by "this" is half of it (explore72 F13).
        best = f"{before.text.strip()} {best}"
    elif not shares[i] and beside_a_match(i):
        # The amount without the sentence naming what it is of ("three to six months of essential expenses") is
        # half a quote: the one on the subject beside it goes with it.
        j = i - 1 if i > 0 and shares[i - 1] else i + 1
        other = candidates[j].text.strip()
        if len(best) + 1 + len(other) <= limit:
            best = f"{other} {best}" if j < i else f"{best} {other}"
    return best if len(best) <= limit else best[: limit - 1].rsplit(" ", 1)[0] + "…"


#: A question asking for an amount ("How much should I save?", "How many bones…", "How big should it be?",
#: "What percentage…") or a frequency ("How often should I feed it?"): `best_sentence` prefers the sentence saying one.
_ASKS_AMOUNT = re.compile(
    r"\bhow\s+(?:much|many|big|large|small|long|far|old|high|tall|deep|heavy|fast|quickly|soon|often|frequently)\b"
    r"|\bwhat\s+(?:percentage|proportion|share|fraction|amount|size|number)\b",
    re.IGNORECASE,
)
#: A number, in digits or words (not "one": "one of the…" says no amount), or a share ("half", "a third", "%").
_AMOUNT = re.compile(
    r"\d|%|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"sixty|seventy|eighty|ninety|hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|"
    r"dozens|half|third|thirds|quarter|quarters|double|twice|triple|percent|per\s+cent)\b",
    re.IGNORECASE,
)
#: How soon or how long, said as a span ("within a day", "after two weeks") or a moment ("immediately").
_SPAN = re.compile(
    r"\b(?:within|after|in|under|over|about|around|for|up\s+to|at\s+least|at\s+most)\s+(?:a|an|one|two|three|four|"
    r"five|six|seven|eight|nine|ten|twelve|a\s+few|several|\d+)\s+(?:seconds?|minutes?|hours?|days?|weeks?|"
    r"fortnights?|months?|years?)\b|\b(?:immediately|instantly|at\s+once|right\s+away|the\s+same\s+day|overnight|"
    r"the\s+next\s+day)\b",
    re.IGNORECASE,
)
#: How often something is done, said without a number ("Feed it every day", "weekly").
_FREQUENCY = re.compile(
    r"\b(?:every|each\s+(?:day|week|month|year|morning|evening)|daily|weekly|fortnightly|monthly|yearly|annually|"
    r"hourly|once|twice|times\s+a)\b",
    re.IGNORECASE,
)


_FIGURE_OR_WORD = re.compile(r"(?<![\w\[])\d+(?:[.,]\d+)?(?![\w\]])|\b[a-z]+\b", re.IGNORECASE)


def figures(text: str) -> list[tuple[int, str]]:
    """The figures of `text` as (word position, canonical figure): digits ("8", "1.5"; not a citation's "[1]") and
    number words ("eight" is "8"); the position counts every word, so nearness can be told."""
    out = []
    for i, token in enumerate(_FIGURE_OR_WORD.findall(text)):
        low = token.lower()
        if low[0].isdigit():
            out.append((i, low.replace(",", ".").rstrip("0").rstrip(".") if "." in low or "," in low else low))
        elif low in _NUMBER_WORDS:
            out.append((i, str(_NUMBER_WORDS[low])))
    return out


def wrong_figure(answer: str, passages: Sequence[Hit], question: str) -> bool:
    """Whether a "how many / how much" answer says a figure, but none of those the passages give beside the thing the
    question names most narrowly (its subject word the passages have fewest times: "octane", not "carbon"). "How many
    carbons are in octane?" was answered "… one carbon atom, which is the only carbon atom in octane", citing
    "… heptane seven, octane eight, nonane nine …" (explore80 F1): the lexical check found its words there. Only a
    figure right after the word counts as the passage's figure for it (a list: "octane eight,"): within two words, or
    before it, the figure was often another's ("in one litre. Seawater contains about 35 grams": explore81 F1; "octane
    has eight carbon atoms" for a question on its hydrogens: F4). With none, or no figure in the answer, nothing is
    said either way: a wrong figure in prose passes (explore81 F2, a known limit)."""
    if asks_for_amount(question) != "amount":
        return False
    said = {f for _, f in figures(answer)}
    if not said:
        return False
    texts = [h.chunk.text for h in passages]
    words_of = [[words.stem(t.lower()) for t in _FIGURE_OR_WORD.findall(text)] for text in texts]
    counts = {s: sum(ws.count(s) for ws in words_of) for s in subject_stems(question) - _AMOUNT_STEMS}
    present = {s: n for s, n in counts.items() if n}
    if not present:
        return False
    fewest = min(present.values())
    expected: set[str] = set()
    for s in (s for s, n in present.items() if n == fewest):
        for text, ws in zip(texts, words_of, strict=True):
            numbers = dict(figures(text))
            expected.update(numbers[i + 1] for i, w in enumerate(ws) if w == s and i + 1 in numbers)
    return bool(expected) and not (said & expected)


#: The words of a question asking an amount, which name nothing in it (`wrong_figure`).
_AMOUNT_STEMS = frozenset(words.stem(w) for w in "many much number amount count total big large".split())


def asks_for_amount(question: str) -> str:
    """Which amount `question` asks for: "often" (how often), "time" (how soon, how quickly, how long), "amount"
    (how much, how many), or "" (none)."""
    found = _ASKS_AMOUNT.search(question)
    if found is None:
        return ""
    said = found.group(0).lower()
    if "often" in said or "frequently" in said:
        return "often"
    return "time" if said.endswith(("soon", "quickly", "long", "fast")) else "amount"


def says_amount(sentence: str, asked: str) -> bool:
    """Whether `sentence` says the kind of amount `asked` (`asks_for_amount`) is for: a span or a moment for a
    "time" question ("… you can reach within a day": explore79 F7)."""
    if asked == "time":
        return bool(_SPAN.search(sentence))
    return bool(_AMOUNT.search(sentence) or (asked == "often" and _FREQUENCY.search(sentence)))


#: Prefixes that negate an English adjective ("mutable", "immutable"): a question asking whether something is one
#: is answered by a sentence saying it is the other.
_NEGATIONS = ("im", "un", "non", "ir", "il")


def with_negations(stems: set[str]) -> dict[str, str]:
    """Each stem, and each of its negated or un-negated forms (of five letters or more), mapped to the stem: "Is a
    partition mutable?" was asked which lesson it meant, though the course says "Each partition is an ordered,
    immutable log" (explore56 F2)."""
    forms = {w: w for w in stems}
    for w in stems:
        for prefix in _NEGATIONS:
            if len(w) >= 5:
                forms.setdefault(prefix + w, w)
            if w.startswith(prefix) and len(w) - len(prefix) >= 5:
                forms.setdefault(w[len(prefix) :], w)
    return forms


#: A sentence going on about the previous one's subject: it opens with a pronoun.
_CONTINUES = re.compile(r"\s*(?:they|it|this|these|those|he|she|its|their)\b", re.IGNORECASE)
#: A sentence that names what the one before it described: "This pattern is called …", "Such a key is …".
_REFERS_BACK = re.compile(r"\s*(?:this|these|such|that)\s+\w+\s+(?:is|are)\s+(?:called|known|named)\b", re.IGNORECASE)


def source_ref(hit: Hit) -> dict[str, str]:
    """The cited source as search hits describe it (`SearchSource`): type, id, title, location."""
    chunk = hit.chunk
    return {"type": chunk.source_type, "id": chunk.source_id, "title": chunk.title, "location": chunk.location}


def quote(hit: Hit, query: str, weights: Mapping[str, float] | None = None) -> str:
    """The sentence of a passage quoted for `query` (`best_sentence`, its title and location as its topic)."""
    chunk = hit.chunk
    return best_sentence(defang(chunk.text), query, weights=weights, topic=f"{chunk.title} {chunk.location}")


def citation(index: int, hit: Hit, query: str, weights: Mapping[str, float] | None = None) -> dict[str, Any]:
    """A citation of `hit` with its quote; `weights`: `quote_weights` of the passages shown with it."""
    return {
        "index": index,
        "chunk_id": hit.chunk.chunk_id,
        "source": source_label(hit),
        "source_ref": source_ref(hit),
        "quote": quote(hit, query, weights),
    }


#: The last part of a quiz lesson's location: the extractor indexes a quiz's prompts (never its options or answers)
#: under this heading (`content.extract.sections_from_snapshot`).
QUIZ_HEADING = "Quiz"


def is_quiz_prompts(hit: Hit) -> bool:
    """A chunk of a quiz lesson's prompts: questions to the student, never an answer to quote."""
    chunk = hit.chunk
    return chunk.source_type == "lesson" and chunk.location.rsplit(" > ", 1)[-1].strip() == QUIZ_HEADING


@lru_cache(maxsize=4096)
def _name_stems(title: str, location: str) -> tuple[frozenset[str], ...]:
    """The subject stems of each name the course outline gives a passage's source, apart: the lesson's or material's
    title and each part of its location (module, lesson, section heading, page), defanged as the model sees them.
    Cached: a course's chunks come back question after question, and the route must not slow the first token."""
    names = [title, *location.split(" > ")]
    return tuple(frozenset(subject_stems(defang(name))) for name in names if name.strip())


def _named(hit: Hit, wanted: set[str]) -> bool:
    return any(wanted <= name for name in _name_stems(hit.chunk.title, hit.chunk.location))


def names_source(hit: Hit, query: str) -> bool:
    """The question names this passage's source: every subject word of it (at least one with a letter) is in one
    name of the source ("Tell me about the field notes" → the lesson *Field notes*). Words of two different names
    ("deep" of the module *Deep sea*, "notes" of the lesson) do not add up, and one word the name lacks ("… about
    whales") is a question the title does not answer."""
    return bool(content_stems(query)) and _named(hit, subject_stems(query))


def named_passages(hits: Sequence[Hit], query: str, k: int) -> list[Hit]:
    """The retrieved passages whose source the question names (`names_source`: "Tell me about the field notes" → the
    chunks of the lesson *Field notes*), in retrieval order, at most `k` (the passages an answer uses); a quiz's
    prompts aside. Empty for a question that is not just a name ("What do the field notes say about whales?")."""
    if not content_stems(query):
        return []
    wanted = subject_stems(query)
    return [h for h in hits if _named(h, wanted) and not is_quiz_prompts(h)][:k]


def fallback_answer(
    passages: Sequence[Hit], query: str, n: int = 2, k: int = 4, lang: str = "en", focus: str = ""
) -> tuple[str, list[dict[str, Any]]] | None:
    """When the model cannot cite: quote the best passages, each with its citation.

    First the passages whose source the question names by its title (`names_source`: "What is in the Field notes
    lesson?" has no word of the lesson's body, its title went to the location), each with its best body sentence, up
    to `k` of them (the passages an answer uses: `decide` puts the named source's retrieved passages first, so a
    lesson asked for by its title is quoted from each of them, not from one); then those whose quote shares a
    subject word with the question (a passage above the cosine floor can still be about something else: "lysosomes"
    answered with the Golgi apparatus), up to `n` quotes in all. A quiz's prompts are never quoted (`is_quiz_prompts`:
    they are questions to the student, not what the material says), nor one sentence twice (overlapping chunks).
    None when no passage qualifies."""
    wanted = subject_stems(query)
    weights = quote_weights(passages, query, focus)  # `focus`: a follow-up's own question
    named: list[Hit] = []
    relevant: list[tuple[Hit, float, bool]] = []  # (passage, weight of the shared words, one names the subject)
    quoted: set[str] = set()
    for h in passages:
        said = quote(h, query, weights)
        if not said or said in quoted or is_quiz_prompts(h):
            continue
        shared = wanted & subject_stems(said + " " + _row_header(h.chunk.text, said))
        if names_source(h, query):
            named.append(h)
        elif shared:
            relevant.append((h, sum(weights[w] for w in shared), bool(shared - _STUDY_STEMS - _HOW_STEMS)))
        else:
            continue
        quoted.add(said)
    named = named[:k]
    # The quotes sharing most of the question's words first, the rarer ones counting more (retrieval order among
    # equals): "What do Osedax worms feed on?" led with a sentence on giant tube worms, which shares "worms" only
    # (explore23 F4).
    relevant.sort(key=lambda item: -round(item[1], 6))
    # A further quote says something about the subject too: half the best one's weight at least, and a word of the
    # subject, not only "form" or "difference" ("How is a stump formed?" went on with "Spits form where …", "How fast
    # does the Holderness coast erode?" with the tides sentence sharing "coast"; explore42 F10).
    if relevant:
        best = relevant[0][1]
        relevant = relevant[:1] + [item for item in relevant[1:] if item[2] and item[1] >= best / 2]
    chosen = named + [h for h, _, _ in relevant[: max(0, n - len(named))]]
    if not chosen:
        return None
    cites = [citation(i, h, query, weights) for i, h in enumerate(chosen, 1)]
    lines = [f"“{c['quote']}” [{c['index']}]" for c in cites]
    return i18n.text("quotes_heading", lang) + "\n" + "\n".join(lines), cites


def _row_header(text: str, quote: str) -> str:
    return next((s.header for s in words.sentences(text) if s.text.strip() == quote), "")


# --- is the draft grounded? ---------------------------------------------------------------------------------------

#: A sentence that talks about citing passages rather than about the course: the model playing the citation
#: instruction back ("The passage is cited with its numbers in square brackets, like [1].") or the generators'
#: instructions ("You can use only the passages you want.").
_ECHO = re.compile(
    r"square\s+brackets|\blike\s*\[\d+\]"
    r"|\bcit(?:e|ed|es|ing|ation|ations)\b.*\b(?:passages?|numbers?|brackets?)\b"
    r"|\b(?:passages?|numbers?|brackets?)\b.*\bcit(?:e|ed|es|ing|ation|ations)\b"
    r"|\bthe\s+passages?\s+(?:is|are|says?|reads?)\s*:"
    r"|\b(?:use|using)\s+only\b.*\bpassages?\b"
    r"|\bpassages?\b.*\b(?:are|is)\s+(?:data|instructions?)\b",
    re.IGNORECASE,
)
#: The least share of a cited sentence's content words that its cited passages must contain (stems, any order):
#: a paraphrase keeps most of them, an invented passage ("The new employee … marketing strategy [1]") keeps none.
LEXICAL_SUPPORT = 0.3


def is_instruction_echo(sentence: str) -> bool:
    return bool(_ECHO.search(sentence))


#: Words an answer uses to talk about its sources rather than about the course ("The passage [1] mentions that …",
#: "according to the text"): they neither support a sentence nor count against it.
_META_STEMS = frozenset(
    words.stem(w)
    for w in """passage passages text texts material materials mention mentions mentioned mentioning discuss discusses
    discussed discussing according provide provides provided detail details information""".split()
)


#: Words of the sentences around an answer that claim nothing about the course ("Here is what I found.", "I hope this
#: helps!", "Great question."): an uncited sentence made only of them needs no support.
_CONNECTIVE_STEMS = _META_STEMS | frozenset(
    words.stem(w)
    for w in """found find finds hope helps helpful great good interesting question questions answer answers
    summary following below let know look see check sure short brief briefly overall example examples classic
    concept concepts illustrate illustrates illustrated""".split()
)

#: A citation standing where a noun should ("The [1] is a classic example of a [2]"): the model wrote numbers instead
#: of what the passages say (explore34 F4).
_NOUN_CITATION = re.compile(r"\b(?:the|a|an)\s+\[\d", re.IGNORECASE)


def shown_stems(passages: Sequence[Hit]) -> set[str]:
    """The content stems of the passages as the model saw them: instruction-like sentences neutralised
    (`prompts.defang`), the source label as the passage attribute shows it."""
    shown: set[str] = set()
    for h in passages:
        label, text = _shown_parts(source_label(h), h.chunk.title, h.chunk.text)
        shown |= label | text
    return shown


@lru_cache(maxsize=4096)
def _shown_parts(label: str, title: str, text: str) -> tuple[frozenset[str], frozenset[str]]:
    """A passage's content stems as the model saw them, apart: its source's names (the label, which has the title
    and the location) and its text (both defanged). Cached: a draft's sentences are checked against the same
    passages."""
    return frozenset(content_stems(f"{defang(label)} {defang(title)}")), frozenset(content_stems(defang(text)))


def label_only_stems(passages: Sequence[Hit]) -> set[str]:
    """The stems of the passages' source names (title, location: "Plankton > Sea butterflies") that none of their
    texts has. A sentence naming them says where to read, not what the course says: "You can read about it in
    Plankton > Sea butterflies [1]." is no answer (explore31 F3), so these words support no claim."""
    label: set[str] = set()
    text: set[str] = set()
    for h in passages:
        names, said = _shown_parts(source_label(h), h.chunk.title, h.chunk.text)
        label |= names
        text |= said
    return label - text


def claimed_stems(sentence: str, question: str = "") -> set[str]:
    """What a sentence of an answer claims: its content stems (citations aside), minus the words it took from the
    question (restating the question is no answer) and the words about the sources themselves (`_META_STEMS`)."""
    return content_stems(_CITATION.sub(" ", sentence)) - content_stems(question) - _META_STEMS


def lexical_support(
    sentence: str, passages: Sequence[Hit], question: str = "", ignore: frozenset[str] = frozenset()
) -> float:
    """The share of the sentence's claimed words (`claimed_stems`) found in the passages as shown to the model
    (`shown_stems`), the words only their source names have aside (`label_only_stems`: naming where to read is no
    claim); 0 when it claims nothing else ("The exam password is: [1]" to "What is the exam password?", "You can
    read about it in Plankton > Sea butterflies [1]." to "Why do shells dissolve?")."""
    said = claimed_stems(sentence, question) - label_only_stems(passages) - ignore
    if not said:
        return 0.0
    return len(said & shown_stems(passages)) / len(said)


_LEADING_CITATIONS = re.compile(r"^(?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+")


def cited_sentences(text: str) -> list[str]:
    """The sentences of a text (`text.sentences`), each with the citations that belong to it: a citation written
    after a sentence's period ("… the state change. [1] The relay …") ends that sentence, not the next one."""
    out: list[str] = []
    for s in words.sentences(text):
        sentence = s.text.strip()
        lead = _LEADING_CITATIONS.match(sentence)
        if lead and out:
            out[-1] = f"{out[-1]} {lead.group().strip()}"
            sentence = sentence[lead.end() :].strip()
        if sentence:
            out.append(sentence)
    return out


def unsupported_claim(
    sentence: str, passages: Sequence[Hit], question: str = "", shown: set[str] | None = None
) -> bool:
    """One sentence of an answer or a generated text is not supported by the passages shown (`lexical_support`
    under `LEXICAL_SUPPORT`, words of the question and words about the sources aside):

    * a sentence citing passages shown, by the passages it cites;
    * a sentence citing none that claims something (claimed words other than connective ones, `_CONNECTIVE_STEMS`:
      "Here is what I found." claims nothing), by all the passages shown ("… [1]. Corals are plants discovered by
      Napoleon." — an invented fact riding on a good citation).

    `shown`: `shown_stems(passages)`, when the caller checks many sentences against the same passages. Lexical, no
    model call."""
    cited = [n for n in cited_indexes(sentence) if 1 <= n <= len(passages)]
    if cited:
        if _NOUN_CITATION.search(sentence):
            return True
        # Words that claim nothing claim nothing when cited either: "The answer is: [1]." was an answer because a
        # passage said "Hash indexes answer only equality tests" (explore34 F4).
        chosen = [passages[n - 1] for n in cited]
        return lexical_support(sentence, chosen, question, _CONNECTIVE_STEMS) < LEXICAL_SUPPORT
    claims = claimed_stems(sentence, question) - _CONNECTIVE_STEMS
    if not claims:
        return False
    claims -= label_only_stems(passages)  # "It is covered in Plankton > Sea butterflies." claims nothing the
    if not claims:  # passages say: pointing at a source is not what the course says
        return True
    found = shown_stems(passages) if shown is None else shown
    return len(claims & found) / len(claims) < LEXICAL_SUPPORT


def unsupported_sentence(text: str, passages: Sequence[Hit], question: str = "") -> str | None:
    """The first sentence of a generated text (`cited_sentences`) that the passages shown do not support, by the
    ask's rule (`unsupported_claim`: a cited sentence by the passages it cites, an uncited one that claims something
    by all of them), or None. Citations of passages not shown count as no citation (`check_citations` removes
    them)."""
    shown = shown_stems(passages)
    for sentence in cited_sentences(text):
        if unsupported_claim(sentence, passages, question, shown):
            return sentence
    return None


def claims_something(sentence: str, question: str = "") -> bool:
    """A sentence states something the passages could support or not: it cites a passage, or it has claimed words
    other than connective ones ("Here is a short summary." claims nothing)."""
    return bool(cited_indexes(sentence)) or bool(claimed_stems(sentence, question) - _CONNECTIVE_STEMS)


#: A figure in a sentence: digits, with decimals or thousands separators (not inside a word: "H2O", "COVID-19").
_FIGURE = re.compile(r"(?<![\w.,-])\d+(?:[.,]\d+)*(?![\w-])")
#: A list item's number at the start of a line ("1. ", "2) "): not a figure the text claims.
_ITEM_NUMBER = re.compile(r"^\s*\d+[.)]\s+", re.M)
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
#: Numbers written as words, as a passage may give them ("fell from fifteen species to eight"): 0-99 (`figures` reads
#: "eight" and "8" as one figure with them).
_NUMBER_WORDS = {word: n for n, word in enumerate(_UNITS)} | {
    f"{ten}-{unit}" if u else ten: 20 + 10 * t + u
    for t, ten in enumerate(_TENS)
    for u, unit in enumerate(["", *_UNITS[1:10]])
}
_WORD_NUMBER = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + r")\b")


def _figure(token: str) -> str:
    """A figure as compared: thousands separators removed, a trailing `.0` dropped ("1,500" = "1500", "2.0" = "2")."""
    value = token.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+", token) else token.replace(",", ".")
    return value[:-2] if value.endswith(".0") else value


def _readings(token: str) -> set[str]:
    """The figures a token may be (`_figure`): "1.200" is 1.2 in English and 1200 where a point groups thousands
    (Spanish, German, Italian: "entre 3.600 € y 7.200 €" answered "3600 €" was an invented figure, explore83 F14)."""
    found = {_figure(token)}
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", token):
        found.add(token.replace(".", ""))
    return found


@lru_cache(maxsize=4096)
def _passage_figures(title: str, location: str, text: str) -> frozenset[str]:
    """The figures a passage gives, in digits or in words (cached: a course's chunks come back request after
    request)."""
    source = f"{title} {location} {text}"
    figures = {reading for t in _FIGURE.findall(source) for reading in _readings(t)}
    figures |= {str(_NUMBER_WORDS[w]) for w in _WORD_NUMBER.findall(source.lower())}
    return frozenset(figures)


def _given_figures(passages: Sequence[Hit]) -> frozenset[str]:
    """The figures the passages shown give (`_passage_figures`)."""
    return frozenset().union(*(_passage_figures(h.chunk.title, h.chunk.location, h.chunk.text) for h in passages))


def invented_details(sentence: str, passages: Sequence[Hit], question: str = "") -> list[str]:
    """The names (`absent_names`) and figures in a generated sentence that no passage shown gives: a summary's
    "a 15% decline in species diversity" over a lesson that says "fell from fifteen species to eight", or
    "Napoleon" and "the Moon" in a sentence whose other words match (explore17 F3: the share of matching words
    alone let both through). Names of the question (an explained concept) count as given; so do citations and list
    numbers."""
    body = _ITEM_NUMBER.sub("", _CITATION.sub(" ", sentence))
    asked = content_stems(question) if question else set()
    names = [n for n in absent_names(body, passages) if not content_stems(n) <= asked]
    given = _given_figures(passages)
    figures = [t for t in _FIGURE.findall(body) if not _readings(t) & given]
    return names + figures


#: Number words an answer may say without claiming a figure ("one of the", "the first two"): not judged.
_LOOSE_NUMBER_WORDS = frozenset({"zero", "one", "two"})


def invented_figures(answer: str, passages: Sequence[Hit], question: str = "") -> list[str]:
    """The figures a student's answer says that neither a passage shown nor the question gives, as said: digits
    always ("A mole contains 6.022 x 10^26 particles", "occupies 44.8 litres" over a course saying 10^23 and 22.4:
    explore81 F2); number words from "three" on when the question asks an amount, a frequency or a span, whose answer
    is its figure ("every three months" for a course saying every six: explore81 F3). A figure the course writes in
    words and the answer in digits is the same figure ("18" for "eighteen": F4). Citations and list numbers are no
    figures."""
    body = _ITEM_NUMBER.sub("", _CITATION.sub(" ", answer))
    given = _given_figures(passages) | _passage_figures("", "", question)
    said = [t for t in _FIGURE.findall(body) if not _readings(t) & given]
    if asks_for_amount(question):
        said += [
            w
            for w in _WORD_NUMBER.findall(body.lower())
            if w not in _LOOSE_NUMBER_WORDS and str(_NUMBER_WORDS[w]) not in given
        ]
    return said


def supported_and_not(
    text: str, passages: Sequence[Hit], question: str = "", *, details: bool = False
) -> tuple[int, list[str]]:
    """How many sentences of a generated text (`cited_sentences`) claim something the passages support, and the
    sentences they do not support (`unsupported_claim`; with `details`, also a sentence with a name or a figure no
    passage gives, `invented_details`), in order."""
    shown = shown_stems(passages)
    supported, unsupported = 0, []
    for sentence in cited_sentences(text):
        if unsupported_claim(sentence, passages, question, shown) or (
            details and invented_details(sentence, passages, question)
        ):
            unsupported.append(sentence)
        elif claims_something(sentence, question):
            supported += 1
    return supported, unsupported


_EMPTY_ITEM = re.compile(r"^[^\S\n]*(?:[-*\u2022]|\d+[.)])?[^\S\n]*$\n?", re.M)


def drop_sentences(text: str, drop: Sequence[str], *, last: bool = False) -> str:
    """The text without the given sentences (each found once, whatever whitespace the text had between its words;
    with `last`, its last occurrence: a cut-off last sentence is the text's end, not an earlier sentence it begins
    like, explore73 F3), without the list items and blank lines that leaves empty."""
    for sentence in drop:
        # Where a sentence starts: not inside a word ("SQL …" is not the end of "PostgreSQL …").
        pattern = r"[^\S\n]*(?<!\S)" + r"\s+".join(re.escape(w) for w in sentence.split())
        found = list(re.finditer(pattern, text))
        if found:
            at = found[-1] if last else found[0]
            text = text[: at.start()] + text[at.end() :]
    text = _EMPTY_ITEM.sub("", text) if drop else text
    return re.sub(r"\n{3,}", "\n\n", text).strip()


#: More repeats of one sentence make a text degenerate: the local model looped one sentence 14 times in a summary,
#: and 6 times in an answer ("The passage [1] mentions that …" six times, cut mid-word).
MAX_REPEATS = 2
_LETTERS = re.compile(r"[^\W\d_]+")
#: Where a finished sentence ends: its punctuation or a citation, then any closing quotes or brackets.
_FINISHED = re.compile(r"(?:[.!?\u2026\u3002\uff01\uff1f]|\[\d{1,3}(?:\s*,\s*\d{1,3})*\])[\"'\u201d\u2019)\]*]*$")
#: An ellipsis at the end (closing quotes or brackets aside): a cut, not an end. The server marks its own cuts so (a
#: quote shortened to its limit, the retry note's excerpt of a sentence once: "… a passage can be con…", copied
#: back by the model as a whole summary in explore31 F4).
_CUT_END = re.compile(r"(?:\u2026|\.\.\.)[\"'\u201d\u2019)\]*]*$")


def loop_key(sentence: str) -> str:
    """A sentence as loops are compared: its words without digits or citations ("The passage 1, the text mentions …"
    and "The passage 2, the text mentions …" are the same sentence said twice)."""
    return " ".join(_LETTERS.findall(_CITATION.sub(" ", sentence).lower()))


def loops(text: str) -> bool:
    """A sentence said more than `MAX_REPEATS` times (`loop_key`): degenerate output, not an answer."""
    counts = Counter(key for s in words.sentences(text) if (key := loop_key(s.text)))
    return bool(counts) and counts.most_common(1)[0][1] > MAX_REPEATS


def unfinished(text: str) -> bool:
    """The text stops mid-sentence: no end punctuation or citation at its end ("… their zoox"), or an ellipsis there
    (`_CUT_END`: "… can be con…" is cut, not finished)."""
    end = text.rstrip()
    return not _FINISHED.search(end) or bool(_CUT_END.search(end))


@dataclass(frozen=True)
class Grounded:
    answer: str  # the draft without its instruction echoes
    valid: list[int]
    invalid: list[int]


#: A draft opening with a citation and a date, as the small model mocks a source: "[1] 2023-01-01: …".
_DATED_CITATION = re.compile(r"\s*\[\d+\]\s*\d{4}-\d{2}-\d{2}\b")
#: A question in quotes inside a sentence: "The answer to the question "What is the difference …?"".
_QUOTED_QUESTION = re.compile(r"[\"“][^\"”]{3,}\?\s*[\"”]?")


def grounded(draft: str, passages: Sequence[Hit], question: str = "", *, cut: bool = False) -> Grounded | None:
    """The draft as an answer to `question`, or None when it is not one. `cut`: the model stopped at its output
    limit, so a last sentence left `unfinished` is dropped (it is incomplete, whatever it cites).

    Not an answer: a prompt play-back (`leaks_prompt`); a draft whose only citations sit in echoes of the citation
    instruction (the echo sentences are dropped first); a cited sentence sharing too few of its claimed words (the
    question's own words and words about the sources aside: `claimed_stems`) with the passages it cites as the model
    saw them (`LEXICAL_SUPPORT`: made-up passages, "[1] 2023-01-01: [1] 2023-01-01: …", the question restated with a
    "[1]", words of a neutralised injection); an uncited sentence that makes a claim (claimed words other than
    connective ones, `_CONNECTIVE_STEMS`: "Here is what I found." claims nothing) sharing too few with all the
    passages shown ("… [1]. Corals are plants discovered by Napoleon."); a loop (`loops`); no citation of a
    passage shown; a citation of a quiz's prompts (`is_quiz_prompts`); a figure other than the passages give for what
    a "how many" question names (`wrong_figure`), or one no passage shown gives (`invented_figures`)."""
    if not draft.strip() or leaks_prompt(draft) or loops(draft):
        return None
    kept: list[str] = []
    shown = shown_stems(passages)
    said = [s.text for s in words.sentences(draft)]
    echoed = cut and unfinished(draft)  # the unfinished last sentence is left out, as echoes are
    if echoed:
        said = said[:-1]
    if _DATED_CITATION.match(draft):
        return None  # "[1] 2023-01-01: …", the small model's mock of a source (explore80 F2: it passed)
    for sentence in said:
        if is_instruction_echo(sentence) or _QUOTED_QUESTION.search(sentence):
            # A question quoted back ("The answer to the question "What is …?"") says nothing: dropped as an echo.
            echoed = True
            continue
        if unsupported_claim(sentence, passages, question, shown):
            return None  # a cited sentence its passages do not support, or an uncited claim none of them supports
        kept.append(sentence)
    answer = " ".join(kept).strip() if echoed else draft.strip()
    if wrong_figure(answer, passages, question) or invented_figures(answer, passages, question):
        # The figure the course gives for the asked thing is not the one said (explore80 F1), or a figure no passage
        # shown gives at all ("occupies 44.8 litres" over a course saying 22.4: explore81 F2).
        return None
    valid, invalid = check_citations(answer, len(passages))
    if any(is_quiz_prompts(passages[n - 1]) for n in valid):
        # A quiz's prompts are questions to the student, never evidence: "The answer to quiz question 2 is [1]: the
        # Calvin cycle fixes carbon dioxide." cited the quiz (with no sentence to quote) for what it does not say
        # (explore78 F2). The retry, then the fallback, which clarifies a quiz question (`nodes.fallback`).
        return None
    return Grounded(answer, valid, invalid) if valid else None
