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

minus one shared `degeneracy_penalty(y)` (0 for ordinary text) for empty, near-empty or looping
answers, which are bad for every side: an empty answer is not "concise", "no, no, no, ..." is not
"informative". A pair is labelled by comparing scores, with a tie margin and optional
Bradley-Terry noise (`label_pair`). The labels depend only on the response (the instruction is
accepted for a uniform call signature and ignored), and on nothing random except that noise.
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
# over all 1,120 responses of the shipped data/candidates.jsonl (seed 0). Computed once with
#     fit_norms([row["response"] for row in read_jsonl("data/candidates.jsonl")])
# and pasted here, so scores never change when the data does. tests/test_annotators.py checks
# that they still match the shipped pool.
# --------------------------------------------------------------------------------------------
SIGNAL_NORMS = {
    # P1 expertise
    "grade_level": (9.0350, 4.2706),  # mean of Coleman-Liau and ARI grade levels, clipped to [-4, 24]
    "rare_word_frac": (0.3033, 0.1657),  # words (3+ letters) outside the Dale-Chall list of 2,940 easy words
    "long_word_frac": (0.0882, 0.0660),  # words with 9 or more letters
    # P2 informativeness
    "log_words": (4.3400, 0.5846),  # log(1 + number of words)
    "log_content_words": (3.2584, 0.5635),  # log(1 + number of distinct content words)
    # P3 style
    "sentiment": (0.1262, 0.2397),  # vaderSentiment compound, averaged over sentences with I / you / we
    "tone_markers": (0.1480, 0.3261),  # tanh(friendly markers - curt markers), see FRIENDLY / CURT
}
DIM_NORMS = {"P1": (-0.0045, 0.8887), "P2": (0.0159, 0.8750), "P3": (0.0006, 0.8606)}

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

# The shared penalty for degenerate answers (in units of a dimension's standard deviation).
PENALTY = 6.0
MIN_WORDS = 5                # fewer words than this: an answer that did not really answer
MIN_DISTINCT_TRIGRAMS = 0.5  # below this fraction of distinct word trigrams: the answer loops
FULL_LOOP = 0.2              # ... and at or below this one it gets the full penalty
Z_CLIP = 3.0                 # standardised signals are clipped to [-3, 3]


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


def raw_signals(response: str) -> dict[str, float]:
    """Every measured signal of one response, before standardisation (see SIGNAL_NORMS)."""
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
        # not standardised, used by the penalty only
        "n_words": float(n),
        "distinct_trigram_frac": distinct_trigram_frac(tokens),
    }


def degeneracy_penalty(signals: dict[str, float]) -> float:
    """0 for ordinary text; up to PENALTY for (near-)empty answers and for answers that loop."""
    # fewer than MIN_WORDS words: linearly from PENALTY (empty) down to 0
    short = max(0.0, (MIN_WORDS - signals["n_words"]) / MIN_WORDS)
    # distinct-trigram fraction below MIN_DISTINCT_TRIGRAMS: linearly up to PENALTY at FULL_LOOP
    loop = min(1.0, max(0.0, (MIN_DISTINCT_TRIGRAMS - signals["distinct_trigram_frac"]) / (MIN_DISTINCT_TRIGRAMS - FULL_LOOP)))
    return PENALTY * max(short, loop)


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

    score(side, y) = sign(side) * d_dim(y) - penalty(y). `instruction` is ignored (the annotators
    judge the response alone), accepted so that every labeller has the same signature.
    """
    side = _check_side(side)
    signals = raw_signals(response)
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
    """All six sides' scores for one response (one pass over the text)."""
    signals = raw_signals(response)
    dims, penalty = _dims_from_signals(signals), degeneracy_penalty(signals)
    return {side: SIGN[side] * dims[side[:2]] - penalty for side in SIDES}


def explain(side: str, response: str) -> dict:
    """Everything behind score(side, response): raw and standardised signals, penalty, score."""
    side = _check_side(side)
    signals = raw_signals(response)
    z = _standardise(signals)
    dims = _dims_from_signals(signals)
    dim = side[:2]
    penalty = degeneracy_penalty(signals)
    return {
        "side": side,
        "name": get_preference(side).name,
        "dimension": dim,
        "signals": {k: round(signals[k], 4) for k in DIM_SIGNALS[dim]},
        "weights": {k: round(w, 3) for k, w in DIM_SIGNALS[dim].items()},
        "standardised": {k: round(z[k], 3) for k in DIM_SIGNALS[dim]},
        "dimension_score": dims[dim],
        "sign": SIGN[side],
        "n_words": int(signals["n_words"]),
        "distinct_trigram_frac": round(signals["distinct_trigram_frac"], 3),
        "penalty": penalty,
        "score": SIGN[side] * dims[dim] - penalty,
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
               rng: np.random.Generator | None = None) -> str:
    """Label one pair for one side: "A", "B" or "tie".

    |s_A - s_B| < tie_margin gives "tie". Otherwise the better response wins when temperature is 0;
    with temperature T > 0 the label is drawn from Bradley-Terry, P(A) = sigmoid((s_A - s_B) / T).
    """
    return label_from_scores(score(side, response_a), score(side, response_b), tie_margin=tie_margin,
                             temperature=temperature, rng=rng)


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
