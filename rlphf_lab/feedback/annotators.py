"""Simulated annotators: one per preference side, each a readable score of one dimension.

The paper asked GPT-4 "which response is more {preference}?". Offline we need annotators that we
can run, inspect and trust, so each dimension gets a score built from signals a student can check
by hand (`explain(side, text)` shows them all):

    P1 expertise        reading level (textstat grade levels) + rare and long vocabulary
    P2 informativeness  number of words + number of distinct content words
    P3 style            vaderSentiment compound of the sentences that address the reader (I / you)
                        + friendly vs curt marker words

Every signal is standardised with fixed constants (mean / std over the shipped candidate pool, see
`fit_norms`) and clipped to [-3, 3]; a dimension is a weighted mean of its standardised signals
(DIM_SIGNALS), standardised again, so a dimension score is roughly N(0, 1) over the candidates.
The two sides of a dimension are the same score with opposite signs:

    score("P1B", y) = +d_P1(y)   (knowledgeable)     score("P1A", y) = -d_P1(y)   (elementary)
    score("P2B", y) = +d_P2(y)   (informative)       score("P2A", y) = -d_P2(y)   (concise)
    score("P3A", y) = +d_P3(y)   (friendly)          score("P3B", y) = -d_P3(y)   (unfriendly)

minus one shared penalty (0 for ordinary text) for degenerate answers, which are bad for every side:
an empty answer is not "concise", "no, no, no, ..." is not "informative", ten rare words in a row are
not "expert". Each check gives a part in [0, 1] from a number a student can count by hand, and

    penalty(y, x) = PENALTY * max_check part_check(y, x)        (PENALTY = 8, see `penalty_parts`)

    empty        fewer than 5 words
    loop         few distinct word trigrams ("no, no, no, ...")
    repetition   sentences, paragraphs or 8-word spans that repeat earlier ones (an answer pasted twice)
    non_answer   fewer than 2 content words that are neither filler ("good", "question", "know") nor
                 the instruction's own words ("I do not know that.", "Good question.", a restatement)
    refusal      a third or more of the sentences refuse or deflect ("I can't help with that.")
    word_salad   almost no function words (the, of, is, ...) in the prose: rare words in a row
    word_order   slips prose never makes ("the of", "blue The sky", "sky. blue is"): shuffled words
    unfinished   stops mid-sentence or mid-word well before the 128-token budget could have cut it
    echo         most word trigrams copied from the instruction ("Sure! <the instruction>")
    off_topic    uses none of the instruction's topic words (crude stems: "scatters" = "scattering")

The last two, and the instruction's words in non_answer, need the instruction x: `score(side, y, x)`;
with x = None they are skipped. PENALTY is large enough that a fully penalised answer scores at least
one standard deviation below every ordinary answer on every side (dimension scores lie within +-3.5).
Measured on the shipped pool: 9 of the 661 hand-audited ordinary train answers (1.4%) get any penalty;
most of the others penalised are real loops, persona rambles and refusals of the 135M model
(tests/test_annotators.py). A pair is labelled by comparing scores, with a tie margin and optional
Bradley-Terry noise (`label_pair`): the labels depend on the response, its instruction, and nothing
random except that noise. `rlphf_lab.feedback.hacks` builds a fixed suite of degenerate answers that
every side must score clearly below a normal one (tests/test_hacks.py).
"""
from __future__ import annotations

import importlib.resources
import math
import re
from functools import lru_cache

import numpy as np

from ..preferences import SIDES, get_preference

DIMS = ("P1", "P2", "P3")
# The "generally better" rater behind the RLHF baseline. The paper asked GPT-4 which answer is better
# with no stated preference; such judges are known to favour longer and warmer answers, so ours is
# half informativeness, half friendliness (and indifferent to expertise):
#     score("general", y) = 0.5 d_P2(y) + 0.5 d_P3(y) - penalty(y)
GENERAL = "general"
GENERAL_WEIGHTS = {"P2": 0.5, "P3": 0.5}
SIGN = {"P1A": -1.0, "P1B": +1.0, "P2A": -1.0, "P2B": +1.0, "P3A": +1.0, "P3B": -1.0}

# --------------------------------------------------------------------------------------------
# Normalisation constants: mean and std of every raw signal, then of every dimension's weighted mean,
# over all 1,848 sampled responses of the shipped data/candidates.jsonl (seed 0, 264 prompts; the
# hack rows of `rlphf-lab add-hacks` left out). Computed once with
#     fit_norms([r["response"] for r in read_jsonl("data/candidates.jsonl") if not r["style"].startswith("hack:")])
# and pasted here, so scores never change when the data does. tests/test_annotators.py checks
# that they still match the shipped pool.
# --------------------------------------------------------------------------------------------
SIGNAL_NORMS = {
    # P1 expertise
    "grade_level": (8.8540, 4.3408),  # mean of Coleman-Liau and ARI grade levels, clipped to [-4, 24]
    "rare_word_frac": (0.2877, 0.1644),  # words (3+ letters) outside the Dale-Chall list of 2,940 easy words
    "long_word_frac": (0.0871, 0.0691),  # words with 9 or more letters
    # P2 informativeness
    "log_words": (4.3485, 0.5758),  # log(1 + number of words)
    "log_content_words": (3.2557, 0.5694),  # log(1 + number of distinct content words)
    # P3 style
    "sentiment": (0.1509, 0.2438),  # vaderSentiment compound, averaged over sentences with I / you / we
    "tone_markers": (0.1649, 0.3348),  # tanh(friendly markers - curt markers), see FRIENDLY / CURT
}
DIM_NORMS = {"P1": (-0.0064, 0.8789), "P2": (0.0158, 0.8720), "P3": (0.0005, 0.8621)}

# Each dimension is a weighted mean of its standardised signals (weights sum to 1).
DIM_SIGNALS = {
    "P1": {"grade_level": 1 / 3, "rare_word_frac": 1 / 3, "long_word_frac": 1 / 3},
    "P2": {"log_words": 0.5, "log_content_words": 0.5},
    "P3": {"sentiment": 0.3, "tone_markers": 0.7},
}

# Tone markers: phrases a friend says vs phrases a curt stranger says (matched as whole words,
# case-insensitive). Each hit counts once; "!" and smileys count as friendly.
FRIENDLY = ("hey", "hi there", "hello there", "buddy", "pal", "mate", "dude", "my friend", "friend", "my dear",
            "haha", "hehe", "lol", "giggle", "laugh", "laughs", "laughing", "smile", "smiling", "grinning", "funny",
            "humor", "humour", "joke", "silly", "fun", "fun fact", "great question", "happy to help", "glad",
            "thrilled", "delighted", "you got this", "you'll love", "don't worry", "no worries", "cool", "awesome",
            "love", "enjoy", "good luck", "cheers", "fantastic", "wonderful", "wow", "yay", "yep", "yeah")
CURT = ("whatever", "whatever you say", "ugh", "sigh", "meh", "obviously", "stupid", "dumb", "idiot", "pathetic",
        "ignorant", "nonsense", "don't bother", "waste of time", "waste my time", "i don't care", "who cares",
        "no one cares", "nobody cares", "so what", "not interested", "not my problem", "not my job", "your problem",
        "figure it out", "do it yourself", "look it up", "just google", "deal with it", "go away", "get lost",
        "leave me alone", "annoying", "annoyed", "irritating", "seriously", "duh", "yeah right", "if you must know",
        "can't be bothered", "pointless", "ridiculous", "useless", "boring", "tedious", "lazy", "shut up", "stop asking")
_SMILEYS = re.compile(r"[:;]-?[)D]|[\U0001F600-\U0001F64F\U0001F300-\U0001F5FF\U0001F900-\U0001F9FF]")

# A small English stopword list: "content words" are the other words of 3+ letters.
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just let me more most much my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so some
such than that the their theirs them themselves then there these they this those through to too under until
up very was we were what when where which while who whom why will with would you your yours yourself
yourselves one two also like well may might must shall there's it's that's can't don't won't i'm you're
they're we're isn't aren't doesn't didn't get got make made way thing things really
""".split())

_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_PERSONAL = re.compile(r"\b(?:i|i'm|i've|i'll|i'd|me|my|you|you're|you've|you'll|you'd|your|we|let's|us)\b", re.I)
_LINE_END = re.compile(r"(?<![.!?:;\s])\s*\n\s*")

# The shared penalty for degenerate answers, in units of a dimension's standard deviation. Each check
# below gives a part in [0, 1] (0: fine, 1: clearly degenerate, linear in between), and the worst
# part counts:  penalty(y) = PENALTY * max_check part_check(y)   (see `penalty_parts`).
PENALTY = 8.0
Z_CLIP = 3.0                 # standardised signals are clipped to [-3, 3]
# checks of the response alone
MIN_WORDS = 5                # near-empty: part = (MIN_WORDS - words) / MIN_WORDS
MIN_DISTINCT_TRIGRAMS = 0.5  # loop: below this fraction of distinct word trigrams the answer loops ...
FULL_LOOP = 0.2              # ... and at or below this one it gets the full penalty
REPEAT_OK, REPEAT_FULL = 0.2, 0.45       # share of sentences, paragraphs or 8-word spans repeating earlier ones
SPAN = 8                     # words in a span (`repeated_span_frac`)
NEW_WORDS = 2                # non-answer: part = (2 - new content words) / 2, see `new_content_words`
REFUSAL_OK, REFUSAL_FULL = 0.34, 0.67    # share of sentences that refuse or deflect (REFUSALS)
SALAD_MIN_WORDS = 8          # word salad is judged on 8+ words of prose, word order on 5+ words
SALAD_OK, SALAD_FULL = 0.15, 0.05        # share of function words (FUNCTION_WORDS); English prose has ~0.4
ORDER_OK, ORDER_FULL = 0.025, 0.05       # word-order errors per word, see `word_order_errors`
# unfinished: an answer that stops mid-sentence gets a part from 0 at 90 pieces (`length_pieces`, about the
# model's tokens) to 1 at 45. The candidates and PPO rollouts are cut at 128 new tokens, about 125 pieces:
# an unfinished answer much shorter than that did not run out of room, it stopped (or was cut) early.
UNFINISHED_OK, UNFINISHED_FULL = 90, 45
# checks against the instruction (skipped when there is none)
ECHO_OK, ECHO_FULL = 0.5, 0.8            # share of the answer's word trigrams copied from the instruction
# off-topic: part 1 when the answer uses none of the instruction's topic words (`topic_overlap` = 0)

# --------------------------------------------------------------------------------------------
# Raw signals
# --------------------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and inner apostrophes)."""
    return [w.lower().replace("\u2019", "'") for w in _WORD.findall(text)]


@lru_cache(maxsize=1)
def easy_words() -> frozenset[str]:
    """The Dale-Chall list of 2,940 words known to most 4th graders (shipped with textstat)."""
    ref = importlib.resources.files("textstat").joinpath("resources/en/easy_words.txt")
    return frozenset(line.strip() for line in ref.read_text(encoding="utf-8").splitlines() if line.strip())


def _is_easy(word: str) -> bool:
    easy = easy_words()
    if word in easy:
        return True
    for suffix in ("s", "es", "ed", "d", "ing", "ly", "er", "est", "'s"):   # crude inflection stripping
        if word.endswith(suffix) and word[: -len(suffix)] in easy:
            return True
    return False


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _marker_pattern(phrases) -> re.Pattern:
    # whole words only: "fun" matches "fun!" but not "function"
    alternatives = sorted(phrases, key=len, reverse=True)        # "my friend" before "friend"
    return re.compile(r"(?<![a-z'])(?:" + "|".join(re.escape(p) for p in alternatives) + r")(?![a-z'])")


_FRIENDLY_RE, _CURT_RE = _marker_pattern(FRIENDLY), _marker_pattern(CURT)


def _count_markers(text: str, pattern: re.Pattern) -> int:
    return len(pattern.findall(text.lower().replace("\u2019", "'")))


def distinct_trigram_frac(tokens: list[str]) -> float:
    """Fraction of word trigrams that are distinct: about 1 for normal text, near 0 for a loop."""
    grams = list(zip(tokens, tokens[1:], tokens[2:]))
    return len(set(grams)) / len(grams) if grams else 1.0


# --------------------------------------------------------------------------------------------
# Degeneracy checks: each a number a student can count by hand
# --------------------------------------------------------------------------------------------

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
_HYPHENATED = re.compile(r"[A-Za-z]+(?:[-'\u2019][A-Za-z]+)*")
_SENTENCE_START_BEFORE = set(".!?:;\n\"'()*#>-\u201c\u2018[|")       # ")": "(laughs) In fact"
_NUMBER_MARKER = re.compile(r"(?<![\w.,])(\d{1,2})[.)](?=\s)")
_LOWER_AFTER_END = re.compile(r"(\S+[.!?])[ \t]+[\"'\u201c]?[a-z]")        # not "(laughs)": stage directions
_ABBREVIATIONS = frozenset("e.g. i.e. etc. vs. approx. mr. mrs. ms. dr. st. no. fig. cf. al. p.m. a.m. u.s. ca. incl.".split())
_PIECE = re.compile(r"[A-Za-z]+|\d+|[^\w\s]")
_MARKUP_LINE = re.compile(r"^\s*(?:\||#+\s|(\*\*|\*|__|_)[^*_\n]+\1[:.]?\s*$)")
# words a finished list item does not end on: "- 2 cups of", "- mix the"
DANGLING = frozenset("""
a an the and or but nor of to in on at for with by from into onto as than that which who whose if because while
when where is are was were be been being will would can could should has have had do does did my your their our
his her its this these those very so not no
""".split())
_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)]|[a-zA-Z][.)])\s+\S")
_CLOSERS = ")]}\"\u201d*_`"
_TERMINAL = ".!?\u2026"


def stem(word: str) -> str:
    """A crude stemmer: up to two common suffixes off, a final y as i, a final e and a doubled letter off.

    stem("scattering") = stem("scatters") = "scat", stem("studies") = stem("study") = "studi"."""
    w = word.lower().replace("\u2019", "'")
    if w.endswith("'s"):
        w = w[:-2]
    for _ in range(2):                  # "scattering" -> "scatter" -> "scatt"
        for suffix in ("ations", "ation", "ments", "ment", "ness", "ings", "ing", "ies", "ied", "ed", "ers", "er", "ly",
                       "es", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)] + ("i" if suffix in ("ies", "ied") else "")
                break
    if len(w) > 3 and w[-1] == "y":
        w = w[:-1] + "i"
    if len(w) > 3 and w[-1] == "e":
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2]:
        w = w[:-1]
    return w


def content_words(text: str) -> list[str]:
    """Words of 3+ letters that are not in STOPWORDS."""
    return [w for w in words(text) if len(w) >= 3 and w not in STOPWORDS]


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


def sentences(text: str) -> list[str]:
    """Sentences: split after . ! ? and at line breaks."""
    return [s for s in re.split(r"(?<=[.!?\u2026])\s+|\n+", text) if s.strip()]


def paragraphs(text: str) -> list[str]:
    """Paragraphs: split at blank lines."""
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


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


def _is_list_line(line: str) -> bool:
    """A list item, table row, heading or a line that is all emphasis ("*Use less water*")."""
    return bool(_LIST_ITEM.match(line) or _MARKUP_LINE.match(line))


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


def raw_signals(response: str, instruction: str | None = None) -> dict[str, float]:
    """Every measured signal of one response, before standardisation (see SIGNAL_NORMS), and the
    signals of the degeneracy checks (`penalty_parts`; those against the instruction are None without one)."""
    import textstat

    text = response.strip()
    tokens = words(text)
    n = len(tokens)
    long_enough = [w for w in tokens if len(w) >= 3]
    # Reading level: Coleman-Liau and ARI need no syllable dictionary (textstat's syllable-based
    # formulas want nltk's cmudict, which would need a download). A line break ends a sentence
    # too, so a bulleted list is not read as one endless sentence.
    lines = _LINE_END.sub(". ", text)
    grade = (textstat.coleman_liau_index(lines) + textstat.automated_readability_index(lines)) / 2 if n else 0.0
    rare = sum(not _is_easy(w) for w in long_enough) / len(long_enough) if long_enough else 0.0
    long_ = sum(len(w) >= 9 for w in tokens) / n if n else 0.0
    content = {w for w in tokens if len(w) >= 3 and w not in STOPWORDS}
    # Tone towards the reader: sentiment of the sentences that say "I" or "you", not of the topic
    # ("the Black Death killed millions" is sad, not unfriendly). No such sentence: neutral, 0.
    personal = [s for s in _SENTENCE.findall(text) if _PERSONAL.search(s)]
    sentiment = float(np.mean([_vader().polarity_scores(s)["compound"] for s in personal])) if personal else 0.0
    friendly = _count_markers(text, _FRIENDLY_RE) + text.count("!") + len(_SMILEYS.findall(text))
    curt = _count_markers(text, _CURT_RE)
    has_instruction = bool(instruction and instruction.strip())
    return {
        "grade_level": float(min(max(grade, -4.0), 24.0)),
        "rare_word_frac": rare,
        "long_word_frac": long_,
        "log_words": math.log1p(n),
        "log_content_words": math.log1p(len(content)),
        "sentiment": sentiment,
        "tone_markers": math.tanh(0.5 * (friendly - curt)),
        # not standardised: the degeneracy checks (penalty_parts)
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


def _ramp(x: float, ok: float, full: float) -> float:
    """0 at `ok`, 1 at `full`, linear in between (either direction)."""
    return min(1.0, max(0.0, (x - ok) / (full - ok)))


def penalty_parts(signals: dict[str, float]) -> dict[str, float]:
    """Every degeneracy check's part in [0, 1]; the penalty is PENALTY times the largest.

        empty       (MIN_WORDS - words) / MIN_WORDS                      fewer than 5 words
        loop        distinct word trigrams from 0.5 (ok) down to 0.2 (full)  "no, no, no, ..."
        repetition  sentences, paragraphs or 8-word spans repeating earlier ones, 0.2 .. 0.45   pasted twice
        non_answer  (2 - new content words) / 2                            "I do not know that."
        refusal     sentences that refuse or deflect, 0.34 .. 0.67         "I can't help with that."
        word_salad  function words in prose from 0.15 down to 0.05 (8+ words)   ten rare words in a row
        word_order  word-order errors per word, 0.025 .. 0.05 (5+ words)   shuffled words
        unfinished  stops mid-sentence: from 90 pieces (ok) down to 45     "Rain forms when wa"
        echo        trigrams copied from the instruction, 0.5 .. 0.8       "Sure! <the instruction>"
        off_topic   1 if the answer uses none of the instruction's topic words   an answer to another question
    """
    n = signals["n_words"]
    sentence_like = n >= SALAD_MIN_WORDS
    parts = {
        "empty": max(0.0, (MIN_WORDS - n) / MIN_WORDS),
        "loop": _ramp(signals["distinct_trigram_frac"], MIN_DISTINCT_TRIGRAMS, FULL_LOOP),
        "repetition": _ramp(max(signals["repeated_sentence_frac"], signals["repeated_paragraph_frac"],
                                signals["repeated_span_frac"]), REPEAT_OK, REPEAT_FULL),
        "non_answer": max(0.0, (NEW_WORDS - signals["new_content_words"]) / NEW_WORDS),
        "refusal": _ramp(signals["refusal_frac"], REFUSAL_OK, REFUSAL_FULL),
        "word_salad": _ramp(signals["function_word_frac"], SALAD_OK, SALAD_FULL) if sentence_like else 0.0,
        "word_order": _ramp(signals["word_order_errors_per_word"], ORDER_OK, ORDER_FULL) if n >= MIN_WORDS else 0.0,
        "unfinished": signals["unfinished"] * _ramp(signals["length_pieces"], UNFINISHED_OK, UNFINISHED_FULL),
        "echo": _ramp(signals["echo_frac"], ECHO_OK, ECHO_FULL) if signals["echo_frac"] is not None else 0.0,
        "off_topic": float(signals["topic_overlap"] == 0.0),   # None (no instruction): skipped
    }
    return parts


def degeneracy_penalty(signals: dict[str, float]) -> float:
    """0 for ordinary text; up to PENALTY for degenerate answers: PENALTY * the largest `penalty_parts`."""
    return PENALTY * max(penalty_parts(signals).values())


def _standardise(signals: dict[str, float]) -> dict[str, float]:
    # z = (x - mean) / std, clipped to [-Z_CLIP, Z_CLIP]: an empty answer is not 7 std "concise"
    return {k: min(max((signals[k] - m) / s, -Z_CLIP), Z_CLIP) for k, (m, s) in SIGNAL_NORMS.items()}


def _dims_from_signals(signals: dict[str, float]) -> dict[str, float]:
    z = _standardise(signals)
    out = {}
    for dim, weights in DIM_SIGNALS.items():
        # d_dim = (sum_k w_k z_k - mu_dim) / sigma_dim
        mean, std = DIM_NORMS[dim]
        out[dim] = (sum(w * z[k] for k, w in weights.items()) - mean) / std
    return out


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

def _check_dim(dim: str) -> str:
    if dim not in DIMS:
        raise ValueError(f"Unknown dimension {dim!r}; use one of {DIMS} (P1 expertise, P2 informativeness, P3 style).")
    return dim


def _check_side(side: str) -> str:
    if side == GENERAL:
        return side
    code = get_preference(side).code          # ValueError for unknown codes
    if code not in SIGN:
        raise ValueError(f"No simulated annotator for {code} ({get_preference(code).name}): sassiness and sarcasm "
                         f"have no simple measurable signal. Use one of {', '.join(SIDES)}, or the AI judge "
                         f"(rlphf_lab.feedback.judge), which takes any side.")
    return code


def dimension_scores(response: str) -> dict[str, float]:
    """Standardised scores d_P1 (expertise), d_P2 (informativeness), d_P3 (friendliness)."""
    return _dims_from_signals(raw_signals(response))


def dimension_score(dim: str, response: str) -> float:
    """One dimension's standardised score: higher = more expert (P1), informative (P2), friendly (P3)."""
    return dimension_scores(response)[_check_dim(dim)]


def score(side: str, response: str, instruction: str | None = None) -> float:
    """The simulated annotator of one side (or of GENERAL): higher is better for that side.

    score(side, y) = sign(side) * d_dim(y) - penalty(y). The dimension scores judge the response
    alone; the penalty also checks it against `instruction` (off-topic, prompt echo, restating the
    question) when one is given, and skips those checks when it is None.
    """
    side = _check_side(side)
    signals = raw_signals(response, instruction)
    return side_scores(_dims_from_signals(signals), degeneracy_penalty(signals))[side]


def side_scores(dims: dict[str, float], penalty: float) -> dict[str, float]:
    """Every annotator's score from the dimension scores and the penalty: the six sides and GENERAL.

        score(side)    = sign(side) * d_dim - penalty
        score(general) = sum_dim GENERAL_WEIGHTS[dim] * d_dim - penalty
    """
    out = {side: SIGN[side] * dims[side[:2]] - penalty for side in SIDES}
    out[GENERAL] = sum(w * dims[d] for d, w in GENERAL_WEIGHTS.items()) - penalty
    return out


def score_all(response: str, instruction: str | None = None) -> dict[str, float]:
    """All six sides' scores for one response (one pass over the text); `instruction` as in `score`."""
    signals = raw_signals(response, instruction)
    dims, penalty = _dims_from_signals(signals), degeneracy_penalty(signals)
    return {side: SIGN[side] * dims[side[:2]] - penalty for side in SIDES}


PENALTY_SIGNALS = ("n_words", "distinct_trigram_frac", "repeated_sentence_frac", "repeated_paragraph_frac",
                   "repeated_span_frac", "new_content_words", "refusal_frac", "function_word_frac",
                   "word_order_errors_per_word", "unfinished", "length_pieces", "echo_frac", "topic_overlap")


def explain(side: str, response: str, instruction: str | None = None) -> dict:
    """Everything behind score(side, response, instruction): raw and standardised signals, every
    degeneracy check (its signal, its part of the penalty), the penalty and the score."""
    side = _check_side(side)
    signals = raw_signals(response, instruction)
    z = _standardise(signals)
    dims = _dims_from_signals(signals)
    parts = penalty_parts(signals)
    penalty = PENALTY * max(parts.values())
    if side == GENERAL:
        own = [k for d in GENERAL_WEIGHTS for k in DIM_SIGNALS[d]]
        dim, sign, dim_score = "+".join(GENERAL_WEIGHTS), 1.0, side_scores(dims, 0.0)[GENERAL]
        weights = {k: round(w * DIM_SIGNALS[d][k], 3) for d, w in GENERAL_WEIGHTS.items() for k in DIM_SIGNALS[d]}
        name = "generally better (RLHF baseline)"
    else:
        dim = side[:2]
        own, sign, dim_score = list(DIM_SIGNALS[dim]), SIGN[side], dims[dim]
        weights = {k: round(w, 3) for k, w in DIM_SIGNALS[dim].items()}
        name = get_preference(side).name
    rounded = lambda v: None if v is None else round(v, 4)      # noqa: E731
    return {
        "side": side,
        "name": name,
        "dimension": dim,
        "signals": {k: round(signals[k], 4) for k in own},
        "weights": weights,
        "standardised": {k: round(z[k], 3) for k in own},
        "dimension_score": dim_score,
        "sign": sign,
        "n_words": int(signals["n_words"]),
        "distinct_trigram_frac": round(signals["distinct_trigram_frac"], 3),
        "penalty_signals": {k: rounded(signals[k]) for k in PENALTY_SIGNALS},
        "penalty_parts": {k: round(v, 3) for k, v in parts.items()},
        "penalty_reason": max(parts, key=parts.get) if penalty > 0 else None,
        "instruction_checks": instruction is not None and bool(instruction.strip()),
        "penalty": penalty,
        "score": sign * dim_score - penalty,
    }


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def label_from_scores(score_a: float, score_b: float, *, tie_margin: float = 0.1, temperature: float = 0.0,
                      rng: np.random.Generator | None = None) -> str:
    """"A", "B" or "tie" from two scores (see `label_pair`)."""
    if tie_margin < 0 or temperature < 0:
        raise ValueError(f"tie_margin ({tie_margin}) and temperature ({temperature}) must be >= 0.")
    diff = score_a - score_b
    if abs(diff) < tie_margin:
        return "tie"
    if temperature == 0:
        return "A" if diff > 0 else "B"
    if rng is None:
        raise ValueError("label noise (temperature > 0) needs a random generator: pass rng=np.random.default_rng(seed).")
    # Bradley-Terry: P(A preferred) = sigmoid((s_A - s_B) / T)
    p_a = float(sigmoid(diff / temperature))
    return "A" if rng.random() < p_a else "B"


def label_pair(side: str, response_a: str, response_b: str, *, tie_margin: float = 0.1, temperature: float = 0.0,
               rng: np.random.Generator | None = None, instruction: str | None = None) -> str:
    """Label one pair for one side: "A", "B" or "tie".

    |s_A - s_B| < tie_margin gives "tie". Otherwise the better response wins when temperature is 0;
    with temperature T > 0 the label is drawn from Bradley-Terry, P(A) = sigmoid((s_A - s_B) / T).
    """
    return label_from_scores(score(side, response_a, instruction), score(side, response_b, instruction),
                             tie_margin=tie_margin, temperature=temperature, rng=rng)


def fit_norms(responses: list[str]) -> tuple[dict, dict]:
    """Recompute SIGNAL_NORMS and DIM_NORMS from a pool of responses (how the constants were made)."""
    rows = [raw_signals(r) for r in responses]
    signal_norms = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])))
                    for k in SIGNAL_NORMS}
    dim_norms = {}
    for dim, weights in DIM_SIGNALS.items():
        z = [{k: min(max((r[k] - signal_norms[k][0]) / signal_norms[k][1], -Z_CLIP), Z_CLIP) for k in weights} for r in rows]
        mix = [sum(w * zr[k] for k, w in weights.items()) for zr in z]
        dim_norms[dim] = (float(np.mean(mix)), float(np.std(mix)))   # ~0 mean: clipping shifts it a little
    return signal_norms, dim_norms


# --------------------------------------------------------------------------------------------
# Exercise (notebook 01)
# --------------------------------------------------------------------------------------------

def check_noise_temperature(temperature: float, diff: float = 1.0, target: float = 0.10) -> bool:
    """Notebook 01: pick T so that a pair whose scores differ by `diff` gets the wrong label
    `target` of the time. Bradley-Terry: P(wrong) = sigmoid(-diff / T), so T = diff / ln((1 - p) / p)."""
    try:
        ok_number = float(temperature) > 0
    except (TypeError, ValueError):
        ok_number = False
    if not ok_number:
        print(f"Not yet: the temperature must be a number > 0 (got {temperature!r}).")
        return False
    temperature = float(temperature)
    wrong = float(sigmoid(-diff / temperature))
    wanted = diff / math.log((1 - target) / target)
    if abs(wrong - target) < 0.005:
        print(f"Correct! With T = {temperature:.3f}, P(wrong label) = sigmoid(-{diff}/T) = {wrong:.3f}. "
              f"Exactly: T = {diff} / ln({1 - target:.2f}/{target:.2f}) = {wanted:.3f}.")
        return True
    direction = "lower" if wrong > target else "higher"
    print(f"Not yet: with T = {temperature:.3f} the label is wrong {wrong:.1%} of the time, not {target:.0%}. "
          f"Try a {direction} temperature: solve sigmoid(-{diff}/T) = {target} for T.")
    return False
