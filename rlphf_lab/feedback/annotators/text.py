"""Reading text: the word, sentence and paragraph units that every signal and check counts.

    words("It's blue.")       ["it's", "blue"]: lower case, letters and inner apostrophes
    content_words(text)       words of 3+ letters that are not in STOPWORDS
    stem("scattering")        "scat": a crude stemmer, so that "scatters" matches too
    sentences(text)           split after . ! ? and at line breaks
    paragraphs(text)          split at blank lines
    _is_list_line(line)       a list item, table row, heading or all-emphasis line (not prose)
"""
from __future__ import annotations

import re

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
_HYPHENATED = re.compile(r"[A-Za-z]+(?:[-'\u2019][A-Za-z]+)*")
_MARKUP_LINE = re.compile(r"^\s*(?:\||#+\s|(\*\*|\*|__|_)[^*_\n]+\1[:.]?\s*$)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)]|[a-zA-Z][.)])\s+\S")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and inner apostrophes)."""
    return [w.lower().replace("\u2019", "'") for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """Words of 3+ letters that are not in STOPWORDS."""
    return [w for w in words(text) if len(w) >= 3 and w not in STOPWORDS]


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


def sentences(text: str) -> list[str]:
    """Sentences: split after . ! ? and at line breaks."""
    return [s for s in re.split(r"(?<=[.!?\u2026])\s+|\n+", text) if s.strip()]


def paragraphs(text: str) -> list[str]:
    """Paragraphs: split at blank lines."""
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _is_list_line(line: str) -> bool:
    """A list item, table row, heading or a line that is all emphasis ("*Use less water*")."""
    return bool(_LIST_ITEM.match(line) or _MARKUP_LINE.match(line))
