"""One shared penalty for degenerate answers, which are bad for every side.

An empty answer is not "concise", "no, no, no, ..." is not "informative", ten rare words in a row
are not "expert". Each degeneracy check (`checks.check_signals`) gives a part in [0, 1] (0: fine,
1: clearly degenerate, linear in between), and the worst part counts:

    penalty(y, x) = PENALTY * max_check part_check(y, x)        (PENALTY = 8)

PENALTY is in units of a dimension's standard deviation, large enough that a fully penalised answer
scores at least one standard deviation below every ordinary answer on every side (dimension scores
lie within +-3.5).
"""
from __future__ import annotations

from .checks import SALAD_MIN_WORDS

PENALTY = 8.0                # penalty = PENALTY * the largest part, in units of a dimension's std
# Each part is a ramp from an ok value (part 0) to a full one (part 1), see `_ramp`.
# checks of the response alone
MIN_WORDS = 5                # near-empty: part = (MIN_WORDS - words) / MIN_WORDS
MIN_DISTINCT_TRIGRAMS = 0.5  # loop: below this fraction of distinct word trigrams the answer loops ...
FULL_LOOP = 0.2              # ... and at or below this one it gets the full penalty
REPEAT_OK, REPEAT_FULL = 0.2, 0.45       # share of sentences, paragraphs or 8-word spans repeating earlier ones
NEW_WORDS = 2                # non-answer: part = (2 - new content words) / 2, see `new_content_words`
REFUSAL_OK, REFUSAL_FULL = 0.34, 0.67    # share of sentences that refuse or deflect (REFUSALS)
SALAD_OK, SALAD_FULL = 0.15, 0.05        # share of function words (FUNCTION_WORDS); English prose has ~0.4
ORDER_OK, ORDER_FULL = 0.025, 0.05       # word-order errors per word, see `word_order_errors`
# unfinished: an answer that stops mid-sentence gets a part from 0 at 90 pieces (`length_pieces`, about the
# model's tokens) to 1 at 45. The candidates and PPO rollouts are cut at 128 new tokens, about 125 pieces:
# an unfinished answer much shorter than that did not run out of room, it stopped (or was cut) early.
UNFINISHED_OK, UNFINISHED_FULL = 90, 45
# checks against the instruction (skipped when there is none)
ECHO_OK, ECHO_FULL = 0.5, 0.8            # share of the answer's word trigrams copied from the instruction
# off-topic: part 1 when the answer uses none of the instruction's topic words (`topic_overlap` = 0)


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
