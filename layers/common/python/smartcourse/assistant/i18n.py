"""The assistant's own texts (a refusal, a clarifying question, the quoted fallback's heading) in the student's
language.

Answers are written by the model from the passages; these few texts are the assistant's, and were English whatever
the question's language. The language is the question's (with the conversation's earlier questions, which help a
short follow-up), identified by langid.py (`py3langid`: its model ships in the wheel, numpy only, ~0.1 ms a
question) among the languages we have texts for; below `MIN_CONFIDENCE`, or for any other language, English.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

#: The languages with texts, English first (the default). The same set as the objectives' Bloom verbs.
LANGUAGES = ("en", "fr", "es", "pt", "it", "de")
#: langid's normalised probability below which a question is not trusted to be in that language: short or mixed
#: questions ("kafka partitions" reads 55 % French) stay English.
MIN_CONFIDENCE = 0.7
#: ... and for a sample of `SHORT_WORDS` words or fewer, which langid reads less surely: "Explain quantum
#: entanglement" reads 76 % French (explore57 F4: an English question refused in French), "Résume le cours" 98 %.
SHORT_MIN_CONFIDENCE = 0.9
SHORT_WORDS = 3
#: A question of this many words or more, read at `SHORT_MIN_CONFIDENCE`, is in its own language, not the
#: conversation's.
SELF_WORDS = 4

TEXTS: dict[str, dict[str, str]] = {
    # A question in another language than the course's, which matched nothing (explore80 F7: "¿Qué es un grupo
    # funcional?" in an English course was told the course had nothing on it).
    "other_language": {
        "en": "This course's material is in {course}, and I search it as it is written: nothing matched your "
        "question. Please ask it in {course}.",
        "fr": "Les supports de ce cours sont en {course}, et je les cherche tels qu'ils sont écrits : rien ne "
        "correspond à votre question. Posez-la en {course}, s'il vous plaît.",
        "es": "El material de este curso está en {course} y lo busco tal como está escrito: nada coincide con tu "
        "pregunta. Hazla en {course}, por favor.",
        "pt": "O material deste curso está em {course} e eu o pesquiso como está escrito: nada corresponde à sua "
        "pergunta. Faça-a em {course}, por favor.",
        "it": "Il materiale di questo corso è in {course} e lo cerco così com'è scritto: niente corrisponde alla tua "
        "domanda. Falla in {course}, per favore.",
        "de": "Das Material dieses Kurses ist auf {course}, und ich durchsuche es so, wie es geschrieben ist: Zu "
        "deiner Frage passt nichts. Stell sie bitte auf {course}.",
    },
    "off_topic": {
        "en": "I couldn't find anything about that in this course's material, so I can't answer it. "
        "Try rephrasing, or ask about a topic the course covers.",
        "fr": "Je n'ai rien trouvé à ce sujet dans les supports de ce cours, je ne peux donc pas y répondre. "
        "Reformulez la question, ou posez-en une sur un sujet que le cours traite.",
        "es": "No encontré nada sobre eso en el material de este curso, así que no puedo responder. "
        "Intenta reformular la pregunta o pregunta sobre un tema que el curso trate.",
        "pt": "Não encontrei nada sobre isso no material deste curso, por isso não posso responder. "
        "Tente reformular a pergunta ou pergunte sobre um tema que o curso aborde.",
        "it": "Non ho trovato nulla su questo nel materiale del corso, quindi non posso rispondere. "
        "Prova a riformulare la domanda o chiedi di un argomento trattato dal corso.",
        "de": "Dazu habe ich im Material dieses Kurses nichts gefunden, deshalb kann ich die Frage nicht "
        "beantworten. Formuliere sie anders oder frage nach einem Thema, das der Kurs behandelt.",
    },
    "quiz_locked": {
        "en": "I can't give the answers to a quiz you haven't passed yet, but I can explain the topics it covers.",
        "fr": "Je ne peux pas donner les réponses d'un quiz que vous n'avez pas encore réussi, mais je peux "
        "expliquer les sujets qu'il aborde.",
        "es": "No puedo darte las respuestas de un cuestionario que aún no has aprobado, pero puedo explicarte "
        "los temas que trata.",
        "pt": "Não posso dar as respostas de um questionário em que você ainda não foi aprovado, mas posso "
        "explicar os temas que ele aborda.",
        "it": "Non posso darti le risposte di un quiz che non hai ancora superato, ma posso spiegarti gli "
        "argomenti che tratta.",
        "de": "Die Antworten eines Quiz, das du noch nicht bestanden hast, kann ich nicht verraten, aber ich kann "
        "die Themen erklären, die es behandelt.",
    },
    "instructions": {
        "en": "I can only help with questions about this course's material.",
        "fr": "Je ne peux répondre qu'aux questions sur les supports de ce cours.",
        "es": "Solo puedo ayudar con preguntas sobre el material de este curso.",
        "pt": "Só posso ajudar com perguntas sobre o material deste curso.",
        "it": "Posso aiutarti solo con domande sul materiale di questo corso.",
        "de": "Ich kann nur bei Fragen zum Material dieses Kurses helfen.",
    },
    "overview": {
        "en": "This course covers: {listed}. Ask me about any of these.",
        "fr": "Ce cours traite de : {listed}. Posez-moi une question sur l'un de ces sujets.",
        "es": "Este curso trata: {listed}. Pregúntame sobre cualquiera de estos temas.",
        "pt": "Este curso aborda: {listed}. Pergunte-me sobre qualquer um destes temas.",
        "it": "Questo corso tratta: {listed}. Chiedimi pure di uno qualsiasi di questi argomenti.",
        "de": "Dieser Kurs behandelt: {listed}. Frag mich zu einem dieser Themen.",
    },
    "which_topic": {
        "en": "Could you say which topic of the course your question is about?",
        "fr": "Pouvez-vous préciser sur quel sujet du cours porte votre question ?",
        "es": "¿Puedes indicar sobre qué tema del curso es tu pregunta?",
        "pt": "Pode dizer sobre qual tema do curso é a sua pergunta?",
        "it": "Puoi dirmi a quale argomento del corso si riferisce la tua domanda?",
        "de": "Kannst du sagen, um welches Thema des Kurses es in deiner Frage geht?",
    },
    "no_subject": {
        "en": "What would you like to know? For example, about one of these parts of the course: {listed}.",
        "fr": "Que voulez-vous savoir ? Par exemple, sur l'une de ces parties du cours : {listed}.",
        "es": "¿Qué te gustaría saber? Por ejemplo, sobre una de estas partes del curso: {listed}.",
        "pt": "O que você gostaria de saber? Por exemplo, sobre uma destas partes do curso: {listed}.",
        "it": "Cosa vorresti sapere? Per esempio, su una di queste parti del corso: {listed}.",
        "de": "Was möchtest du wissen? Zum Beispiel zu einem dieser Teile des Kurses: {listed}.",
    },
    "ambiguous": {
        "en": "Your question could be about several parts of the course: {listed}. Which one do you mean?",
        "fr": "Votre question pourrait porter sur plusieurs parties du cours : {listed}. Laquelle voulez-vous dire ?",
        "es": "Tu pregunta podría referirse a varias partes del curso: {listed}. ¿Cuál quieres decir?",
        "pt": "A sua pergunta pode referir-se a várias partes do curso: {listed}. Qual delas você quer dizer?",
        "it": "La tua domanda potrebbe riguardare diverse parti del corso: {listed}. Quale intendi?",
        "de": "Deine Frage könnte sich auf mehrere Teile des Kurses beziehen: {listed}. Welchen meinst du?",
    },
    "no_quote": {
        "en": "I found parts of the course near your question, but none of their sentences answers it. Try asking "
        "about one idea at a time, in the course's own words.",
        "fr": "J'ai trouvé des parties du cours proches de votre question, mais aucune de leurs phrases n'y répond. "
        "Posez une question sur une seule idée à la fois, avec les mots du cours.",
        "es": "Encontré partes del curso cercanas a tu pregunta, pero ninguna de sus frases la responde. Pregunta "
        "por una sola idea a la vez, con las palabras del curso.",
        "pt": "Encontrei partes do curso próximas da sua pergunta, mas nenhuma das frases delas a responde. "
        "Pergunte sobre uma ideia de cada vez, com as palavras do curso.",
        "it": "Ho trovato parti del corso vicine alla tua domanda, ma nessuna delle loro frasi risponde. Chiedi "
        "un'idea alla volta, con le parole del corso.",
        "de": "Ich habe Teile des Kurses gefunden, die deiner Frage nahe sind, aber keiner ihrer Sätze beantwortet "
        "sie. Frag nach jeweils einer Idee, mit den Worten des Kurses.",
    },
    "quiz_question": {
        "en": "I don't see the quizzes' questions, only the lessons. Ask me about the topic a question is on and "
        "I'll explain it from the course; your quiz results say which of your answers were right.",
        "fr": "Je ne vois pas les questions des quiz, seulement les leçons. Demandez-moi le sujet d'une question et "
        "je l'expliquerai à partir du cours ; vos résultats de quiz indiquent lesquelles de vos réponses étaient "
        "justes.",
        "es": "No veo las preguntas de los cuestionarios, solo las lecciones. Pregúntame por el tema de una pregunta "
        "y te lo explicaré con el curso; tus resultados del cuestionario dicen cuáles de tus respuestas eran "
        "correctas.",
        "pt": "Não vejo as perguntas dos questionários, só as lições. Pergunte-me sobre o tema de uma pergunta e eu o "
        "explico com o curso; os seus resultados dizem quais das suas respostas estavam certas.",
        "it": "Non vedo le domande dei quiz, solo le lezioni. Chiedimi l'argomento di una domanda e te lo spiegherò "
        "dal corso; i risultati del quiz dicono quali tue risposte erano giuste.",
        "de": "Die Fragen der Quiz sehe ich nicht, nur die Lektionen. Frag mich nach dem Thema einer Frage, dann "
        "erkläre ich es aus dem Kurs; deine Quiz-Ergebnisse zeigen, welche deiner Antworten richtig waren.",
    },
    "acknowledged": {
        "en": "You're welcome! Ask me anything else about this course whenever you like.",
        "fr": "Avec plaisir ! Posez-moi une autre question sur ce cours quand vous voulez.",
        "es": "¡De nada! Pregúntame lo que quieras sobre este curso cuando quieras.",
        "pt": "De nada! Pergunte-me o que quiser sobre este curso quando quiser.",
        "it": "Prego! Chiedimi pure altro su questo corso quando vuoi.",
        "de": "Gern geschehen! Frag mich jederzeit noch etwas zu diesem Kurs.",
    },
    "quotes_heading": {
        "en": "Here is what the course material says:",
        "fr": "Voici ce que disent les supports du cours :",
        "es": "Esto es lo que dice el material del curso:",
        "pt": "Eis o que diz o material do curso:",
        "it": "Ecco cosa dice il materiale del corso:",
        "de": "Das steht im Kursmaterial dazu:",
    },
}


#: A word of thanks that says its language ("merci" is too short for langid, which reads it as English).
_THANKS = {
    "merci": "fr",
    "gracias": "es",
    "obrigado": "pt",
    "obrigada": "pt",
    "grazie": "it",
    "danke": "de",
    "dank": "de",
    "dankeschön": "de",
}


def thanks_language(said: str) -> str | None:
    """The language a word of thanks in `said` names, if one does."""
    found = [_THANKS[w] for w in said.lower().replace("!", " ").replace(",", " ").split() if w in _THANKS]
    return found[0] if found else None


#: Each language's name, in each language of the texts (`other_language`).
LANGUAGE_NAMES: dict[str, dict[str, str]] = {
    "en": {"en": "English", "fr": "French", "es": "Spanish", "pt": "Portuguese", "it": "Italian", "de": "German"},
    "fr": {"en": "anglais", "fr": "français", "es": "espagnol", "pt": "portugais", "it": "italien", "de": "allemand"},
    "es": {"en": "inglés", "fr": "francés", "es": "español", "pt": "portugués", "it": "italiano", "de": "alemán"},
    "pt": {"en": "inglês", "fr": "francês", "es": "espanhol", "pt": "português", "it": "italiano", "de": "alemão"},
    "it": {"en": "inglese", "fr": "francese", "es": "spagnolo", "pt": "portoghese", "it": "italiano", "de": "tedesco"},
    "de": {
        "en": "Englisch",
        "fr": "Französisch",
        "es": "Spanisch",
        "pt": "Portugiesisch",
        "it": "Italienisch",
        "de": "Deutsch",
    },
}
#: Words of material needed to tell its language (`material_language`).
MATERIAL_WORDS = 20


def material_language(texts: Sequence[str]) -> str | None:
    """The language the course's material is written in, read from some of it (retrieved passages, the outline's
    titles), if it can be told surely; None otherwise."""
    sample = " ".join(t.strip() for t in texts if t.strip())[:3000]
    if len(sample.split()) < MATERIAL_WORDS:
        return None
    lang, confidence = _identifier().classify(sample)
    return str(lang) if confidence >= SHORT_MIN_CONFIDENCE and lang in LANGUAGES else None


def text(key: str, lang: str = "en", **fields: Any) -> str:
    """The text `key` in `lang` (English when there is none), its `{fields}` filled in."""
    versions = TEXTS[key]
    return versions.get(lang, versions["en"]).format(**fields)


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """langid's model (~0.9 s to load: once per process, on its first refusal, clarification or quoted fallback;
    an answer the model writes needs no language read)."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    with _lock:
        found = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
        found.set_languages(list(LANGUAGES))
        return found


async def loaded() -> None:
    """Load the language model from a coroutine: its first load (~0.9 s) runs in a thread, never on the event loop;
    `language` and `material_language` then read without waiting."""
    if not _identifier.cache_info().currsize:
        await asyncio.to_thread(_identifier)


def language(question: str, earlier: Sequence[str] = (), default: str = "en") -> str:
    """The language of a question (one of `LANGUAGES`), read with the conversation's earlier questions (at most the
    last three): "et le relais ?" alone is too short to tell. `default` when unsure (English, or the course's)."""
    stripped = question.strip()
    if stripped.startswith(("¿", "¡")):  # only Spanish opens a question so ("¿Qué significa quisiera?": 82 %)
        return "es"
    if len(stripped.split()) >= SELF_WORDS:
        # A question long enough to tell, told surely, is in its own language, whatever the conversation's: a learner
        # of a language course switches ("How do I say good evening?" after Spanish got a Spanish frame: explore75 F5).
        lang, confidence = _identifier().classify(stripped)
        if confidence >= SHORT_MIN_CONFIDENCE:
            return str(lang) if lang in LANGUAGES else "en"
    sample = " ".join([*earlier[-3:], question]).strip()
    if not sample:
        return default
    lang, confidence = _identifier().classify(sample)
    needed = SHORT_MIN_CONFIDENCE if len(sample.split()) <= SHORT_WORDS else MIN_CONFIDENCE
    return str(lang) if confidence >= needed and lang in LANGUAGES else default
