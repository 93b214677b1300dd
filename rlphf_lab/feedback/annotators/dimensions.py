"""The three preference dimensions, each a standardised score built from signals a student can check:

    P1 expertise        reading level (textstat grade levels) + rare and long vocabulary
    P2 informativeness  number of words + number of distinct content words
    P3 style            vaderSentiment compound of the sentences that address the reader (I / you)
                        + friendly vs curt marker words

Every raw signal x_k is standardised with fixed constants (mean / std over the shipped candidate
pool, `fit_norms`) and clipped; a dimension is a weighted mean of its standardised signals
(DIM_SIGNALS), standardised again, so that d_dim is roughly N(0, 1) over the candidates:

    z_k     = clip((x_k - mean_k) / std_k, -Z_CLIP, Z_CLIP)
    d_dim   = (sum_k DIM_SIGNALS[dim][k] * z_k - mean_dim) / std_dim
"""
from __future__ import annotations

import importlib.resources
import math
import re
from functools import lru_cache

import numpy as np

from .text import STOPWORDS, words

DIMS = ("P1", "P2", "P3")

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
Z_CLIP = 3.0                 # standardised signals are clipped to [-3, 3]

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
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_PERSONAL = re.compile(r"\b(?:i|i'm|i've|i'll|i'd|me|my|you|you're|you've|you'll|you'd|your|we|let's|us)\b", re.I)
_LINE_END = re.compile(r"(?<![.!?:;\s])\s*\n\s*")


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


def dimension_signals(response: str) -> dict[str, float]:
    """The seven signals of the three dimensions (SIGNAL_NORMS), before standardisation."""
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
    return {
        "grade_level": float(min(max(grade, -4.0), 24.0)),
        "rare_word_frac": rare,
        "long_word_frac": long_,
        "log_words": math.log1p(n),
        "log_content_words": math.log1p(len(content)),
        "sentiment": sentiment,
        "tone_markers": math.tanh(0.5 * (friendly - curt)),
    }


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


def _check_dim(dim: str) -> str:
    if dim not in DIMS:
        raise ValueError(f"Unknown dimension {dim!r}; use one of {DIMS} (P1 expertise, P2 informativeness, P3 style).")
    return dim


def dimension_scores(response: str) -> dict[str, float]:
    """Standardised scores d_P1 (expertise), d_P2 (informativeness), d_P3 (friendliness)."""
    return _dims_from_signals(dimension_signals(response))


def dimension_score(dim: str, response: str) -> float:
    """One dimension's standardised score: higher = more expert (P1), informative (P2), friendly (P3)."""
    return dimension_scores(response)[_check_dim(dim)]


def fit_norms(responses: list[str]) -> tuple[dict, dict]:
    """Recompute SIGNAL_NORMS and DIM_NORMS from a pool of responses (how the constants were made)."""
    rows = [dimension_signals(r) for r in responses]
    signal_norms = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])))
                    for k in SIGNAL_NORMS}
    dim_norms = {}
    for dim, weights in DIM_SIGNALS.items():
        z = [{k: min(max((r[k] - signal_norms[k][0]) / signal_norms[k][1], -Z_CLIP), Z_CLIP) for k in weights} for r in rows]
        mix = [sum(w * zr[k] for k, w in weights.items()) for zr in z]
        dim_norms[dim] = (float(np.mean(mix)), float(np.std(mix)))   # ~0 mean: clipping shifts it a little
    return signal_norms, dim_norms
