"""Degeneracy checks: the numbers behind the shared penalty, each one a student can count by hand.

    n_words                      words (`text.words`)                     empty: fewer than 5
    distinct_trigram_frac        distinct word trigrams / trigrams        loop: "no, no, no, ..."
    repeated_*_frac              sentences, paragraphs, 8-word spans that repeat earlier ones (pasted twice)
    new_content_words            content words neither FILLER nor the instruction's own
    refusal_frac                 sentences matching REFUSALS               "I can't help with that."
    function_word_frac           FUNCTION_WORDS / words of prose           word salad
    word_order_errors_per_word   "the of", "blue The sky", "sky. blue is"  shuffled words
    unfinished, length_pieces    stops mid-sentence, after how many pieces (about the model's tokens)
    echo_frac                    trigrams copied from the instruction      (needs the instruction)
    topic_overlap                instruction's topic words it uses         (needs the instruction)

`check_signals(response, instruction)` measures them all; `penalty.penalty_parts` turns each into a
part of the penalty.
"""
from __future__ import annotations

import re

from .dimensions import _SMILEYS
from .text import STOPWORDS, _HYPHENATED, _is_list_line, content_words, paragraphs, sentences, stem, words

SPAN = 8                     # words in a span (`repeated_span_frac`)
SALAD_MIN_WORDS = 8          # word salad is judged on 8+ words of prose, word order on 5+ words

# Words that say something about the question or the conversation, not about the topic: an answer
# made only of these (and of the instruction's own words) has not answered ("Good question!").
FILLER = frozenset("""
question questions answer answers answering answered good great nice interesting excellent wonderful fantastic
amazing awesome know knows knowing known sure idea ideas sorry help helps helping helpful thanks thank please
topic topics subject response respond reply ask asks asking asked tell telling told say saying said glad happy
hope think thinking maybe perhaps honestly really okay fine certainly definitely absolutely course info
information explain explaining explanation wonder wondering sounds hmm well yes yeah sir madam dear friend
something anything everything nothing someone anyone everyone everybody actually basically simply wow want wants
""".split())

# Function words for the word-salad check: STOPWORDS and a few more that dense technical prose leans on.
FUNCTION_WORDS = STOPWORDS | frozenset("""
via per upon within without among across toward towards whose yet though although unless since whether either
neither whereas wherein whereby thus hence therefore however rather onto amid despite beyond versus
""".split())

# Words of the instruction that set the task rather than the topic ("Explain the difference between
# atoms and molecules": the topic words are atoms and molecules).
TASK_WORDS = frozenset("""
explain describe tell give list compare difference differences different work works working important tips tip
ways good better best main common basic people someone know actually example examples simple terms idea role
affect affects use used using happen happens reason reasons cause causes effect effects help helps start should
would need needs keep new time thing things kind kinds type types part parts
""".split())

# Sentences that refuse or deflect instead of answering (matched case-insensitively, apostrophes
# normalised). One such sentence inside a real answer ("I'm not a doctor, but ...") is fine; a reply
# made mostly of them is a refusal.
REFUSALS = (
    r"\bi (?:do not|don't|dont) know\b", r"\bi have no idea\b", r"\b(?:i am|i'm) not sure\b",
    r"\bi (?:can ?not|can't|won't|will not|am unable to|'m unable to|am not able to|'m not able to|"
    r"am not allowed to|'m not allowed to) (?:help|answer|assist|provide|tell|say|explain|do that|comment|discuss|"
    r"give|share|talk|go into|get into)\b",
    r"\b(?:i am|i'm) (?:afraid|sorry),? (?:but )?(?:i|that)\b", r"\bas an ai\b", r"\bi'm (?:just |only )?an ai\b",
    r"\b(?:good|great|interesting|excellent|nice) question\b", r"\bno comment\b", r"\bask (?:someone|somebody) else\b",
    r"\bi (?:would|'d) rather not\b", r"\bthat's (?:not )?(?:a|an) (?:hard|tough|difficult) (?:one|question)\b",
)
_REFUSAL_RE = re.compile("|".join(REFUSALS))

# Function words that English never puts right after "a", "an" or "the" ("the of", "a is").
_NOT_AFTER_ARTICLE = frozenset("""
a an the of and or but nor is are was were be been being am to in on at for with by from into onto it its he
she they we you i me him them us that this these those not if as so than then when where why how what which who
whom does did has have had would could should there here
""".split())          # (not "will", "can", "may", "must": nouns too, "the will to resist")
_SENTENCE_START_BEFORE = set(".!?:;\n\"'()*#>-\u201c\u2018[|")       # ")": "(laughs) In fact"
_NUMBER_MARKER = re.compile(r"(?<![\w.,])(\d{1,2})[.)](?=\s)")
_LOWER_AFTER_END = re.compile(r"(\S+[.!?])[ \t]+[\"'\u201c]?[a-z]")        # not "(laughs)": stage directions
_ABBREVIATIONS = frozenset("e.g. i.e. etc. vs. approx. mr. mrs. ms. dr. st. no. fig. cf. al. p.m. a.m. u.s. ca. incl.".split())
_PIECE = re.compile(r"[A-Za-z]+|\d+|[^\w\s]")
# words a finished list item does not end on: "- 2 cups of", "- mix the"
DANGLING = frozenset("""
a an the and or but nor of to in on at for with by from into onto as than that which who whose if because while
when where is are was were be been being will would can could should has have had do does did my your their our
his her its this these those very so not no
""".split())
_CLOSERS = ")]}\"\u201d*_`"
_TERMINAL = ".!?\u2026"
PENALTY_SIGNALS = ("n_words", "distinct_trigram_frac", "repeated_sentence_frac", "repeated_paragraph_frac",
                   "repeated_span_frac", "new_content_words", "refusal_frac", "function_word_frac",
                   "word_order_errors_per_word", "unfinished", "length_pieces", "echo_frac", "topic_overlap")


def distinct_trigram_frac(tokens: list[str]) -> float:
    """Fraction of word trigrams that are distinct: about 1 for normal text, near 0 for a loop."""
    grams = list(zip(tokens, tokens[1:], tokens[2:]))
    return len(set(grams)) / len(grams) if grams else 1.0


def topic_words(instruction: str) -> set[str]:
    """Stems of the instruction's content words, less the task words ("explain", "tips", ...)."""
    return {stem(w) for w in content_words(instruction) if w not in TASK_WORDS}


def _uses(topic_stem: str, stems: set[str], tokens: set[str]) -> bool:
    # the same stem, or (stems of 5+ letters) one inside the other: "plant" / "houseplants"
    if topic_stem in stems:
        return True
    if len(topic_stem) >= 5 and any(topic_stem in t for t in tokens):
        return True
    return any(len(s) >= 5 and s in topic_stem for s in stems)


def topic_overlap(instruction: str, response: str) -> float | None:
    """Share of the instruction's topic words that the response uses (None: no topic words)."""
    topic = topic_words(instruction)
    if not topic:
        return None
    tokens = set(words(response))
    stems = {stem(w) for w in tokens}
    return sum(_uses(t, stems, tokens) for t in topic) / len(topic)


def new_content_words(response: str, instruction: str | None = None) -> int:
    """Distinct content words of the response that are neither FILLER nor (by stem) in the instruction."""
    said = {stem(w) for w in words(instruction)} if instruction else set()
    return len({stem(w) for w in content_words(response) if w not in FILLER} - said)


def _normalise(unit: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", unit.lower().replace("\u2019", "'")).split())


def repeated_frac(units: list[str], min_words: int = 3) -> float:
    """Share of units (sentences or paragraphs of 3+ words) that repeat an earlier one, ignoring case,
    punctuation and spacing: 0.5 for an answer pasted twice, 0 for ordinary text."""
    seen, repeats, n = set(), 0, 0
    for unit in units:
        key = _normalise(unit)
        if len(key.split()) < min_words:
            continue
        n += 1
        repeats += key in seen
        seen.add(key)
    return repeats / n if n >= 2 else 0.0


def repeated_span_frac(tokens: list[str], k: int = SPAN) -> float:
    """Share of the answer's k-word windows that already occurred earlier in it: close to 0.5 for an
    answer pasted twice (0.43 for a 30-word one), however the copies are joined; near 0 for ordinary text."""
    grams = [tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1)]
    seen, repeats = set(), 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams) if grams else 0.0


def refusal_frac(text: str) -> float:
    """Share of sentences that refuse or deflect (match REFUSALS)."""
    units = sentences(text)
    hits = sum(bool(_REFUSAL_RE.search(u.lower().replace("\u2019", "'"))) for u in units)
    return hits / len(units) if units else 0.0


def word_order_errors(text: str) -> int:
    """Word-order slips that English prose almost never makes, but shuffled words make all the time:
    an article followed by a function word ("the of", "a is"), a capitalised function word in the
    middle of a sentence ("blue The sky"), numbered items out of order ("1. ... 3. ... 2."), and a
    sentence that starts in lower case ("sky. blue is")."""
    raw = [m.group().replace("\u2019", "'") for m in _HYPHENATED.finditer(text)]     # "an in-depth" is fine
    # lower-case articles only: a capital "A" inside a sentence is a name or a variable ("A = P (1 + r)")
    errors = sum(a in ("a", "an", "the") and b.lower() in _NOT_AFTER_ARTICLE for a, b in zip(raw, raw[1:]))
    matches = list(_HYPHENATED.finditer(text))
    for i, m in enumerate(matches):
        word = m.group()
        # (one capital letter is a name or a variable: "I", "A = P (1 + r)")
        if not word[0].isupper() or word.lower() not in STOPWORDS or len(word) == 1 or word.startswith(("I'", "I\u2019")):
            continue
        before = text[: m.start()].rstrip(" \t")
        if not before or before[-1] in _SENTENCE_START_BEFORE or before[-1].isdigit():
            continue
        # Title Case ("Mix It Up", "The Art of War"): a neighbour is capitalised too
        neighbours = [matches[j].group() for j in (i - 1, i + 1) if 0 <= j < len(matches)]
        if any(w[0].isupper() for w in neighbours):
            continue
        errors += 1
    # a sentence that starts in lower case: "... healthy. tooth body" (not after "e.g.", "1." or "..."),
    # the first one included; not counted for a writer who never uses capitals (but for "I")
    # numbered items out of order: each number follows the one before it, or starts again at 1
    numbers = [int(m.group(1)) for m in _NUMBER_MARKER.finditer(text)]
    errors += sum(b != a + 1 and b != 1 for a, b in zip(numbers, numbers[1:]))
    if not any(w[0].isupper() and w not in ("I", "I'm", "I've", "I'll", "I'd") for w in raw):
        return errors
    errors += bool(re.match(r"\s*[\"'\u201c]?[a-z]", text))
    for m in _LOWER_AFTER_END.finditer(text):
        before = m.group(1)
        if before.endswith("..") or before.lower() in _ABBREVIATIONS or before[:-1].isdigit() or len(before) == 2:
            continue
        errors += 1
    return errors


def is_unfinished(text: str) -> bool:
    """True when the answer stops mid-sentence: the last line ends without . ! ? (closing quotes, brackets,
    markdown and emoji aside), unless it ends a list (or table) whose items carry no full stop, on a
    word that does not dangle (DANGLING: "the", "of", "and", ...)."""
    text = text.strip()
    if not text or text.endswith("```"):
        return False
    end = text.rstrip("'\u2019 \t\n")
    if not end or end[-1] in _TERMINAL + _CLOSERS or _SMILEYS.search(text[-3:]) or not end[-1].isascii():
        return False
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) >= 2 and all(_is_list_line(line) for line in lines[-2:]):
        # a list whose items carry no full stop: finished if the item before the last one ends without
        # one too, and the last one does not dangle ("2. Sugar", "- keep it close to you", not "- add the", "- th")
        before = lines[-2].rstrip("'\u2019 \t")
        tail = words(lines[-1])
        return (before[-1:] in tuple(_TERMINAL) or not end[-1].isalpha() or not tail or tail[-1] in DANGLING
                or len(tail[-1]) <= 2 and tail[-1] not in STOPWORDS)          # "- Pack your th"
    return True


def function_word_frac(text: str) -> float:
    """Share of function words (FUNCTION_WORDS) among the words of the answer's prose lines (list items
    and table rows left out: "- 2 cups flour" is not a sentence; "proton-proton" is one word). 1.0
    (nothing to judge) under 8 prose words."""
    prose = [w.lower() for line in text.splitlines() if not _is_list_line(line) for w in _HYPHENATED.findall(line)]
    return sum(w in FUNCTION_WORDS for w in prose) / len(prose) if len(prose) >= SALAD_MIN_WORDS else 1.0


def length_pieces(text: str) -> int:
    """Words, numbers and punctuation marks, each counted once: close to the number of model tokens."""
    return len(_PIECE.findall(text))


def echo_frac(response: str, instruction: str) -> float:
    """Share of the response's word trigrams that also occur in the instruction."""
    tokens, asked = words(response), words(instruction)
    grams = list(zip(tokens, tokens[1:], tokens[2:]))
    if not grams:
        return 1.0 if tokens and set(tokens) <= set(asked) else 0.0
    asked_grams = set(zip(asked, asked[1:], asked[2:]))
    return sum(g in asked_grams for g in grams) / len(grams)


def check_signals(response: str, instruction: str | None = None) -> dict[str, float]:
    """The signals of the degeneracy checks (PENALTY_SIGNALS), each a number a student can count by
    hand; those against the instruction (echo_frac, topic_overlap) are None without one."""
    text = response.strip()
    tokens = words(text)
    n = len(tokens)
    has_instruction = bool(instruction and instruction.strip())
    return {
        "n_words": float(n),
        "distinct_trigram_frac": distinct_trigram_frac(tokens),
        "repeated_sentence_frac": repeated_frac(sentences(text)),
        "repeated_paragraph_frac": repeated_frac(paragraphs(text)),
        "repeated_span_frac": repeated_span_frac(tokens),
        "new_content_words": float(new_content_words(text, instruction if has_instruction else None)),
        "refusal_frac": refusal_frac(text),
        "function_word_frac": function_word_frac(text),
        "word_order_errors_per_word": word_order_errors(text) / n if n else 0.0,
        "unfinished": float(is_unfinished(text)),
        "length_pieces": float(length_pieces(text)),
        "echo_frac": echo_frac(text, instruction) if has_instruction else None,
        "topic_overlap": topic_overlap(instruction, text) if has_instruction else None,
    }
