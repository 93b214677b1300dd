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

    text         reading text: words, content_words, stem, sentences, paragraphs
    dimensions   d_P1, d_P2, d_P3: dimension_signals, the fixed SIGNAL_NORMS / DIM_NORMS, fit_norms
    checks       the degeneracy checks' numbers: check_signals, topic_overlap, word_order_errors, ...
    penalty      penalty_parts and degeneracy_penalty (PENALTY times the worst part)
    sides        the annotators: score, score_all, side_scores, raw_signals; SIGN, GENERAL
    explanation  explain(side, y, x): every signal and check behind one score
    labels       label_pair, label_from_scores (tie margin, Bradley-Terry noise)

    from rlphf_lab.feedback import annotators
    annotators.score("P2A", "Rayleigh scattering.", "Why is the sky blue?")
"""
from ...preferences import SIDES      # the six sides the annotators score
from .checks import (DANGLING, FILLER, FUNCTION_WORDS, PENALTY_SIGNALS, REFUSALS, SALAD_MIN_WORDS, SPAN, TASK_WORDS,
                     check_signals, distinct_trigram_frac, echo_frac, function_word_frac, is_unfinished, length_pieces,
                     new_content_words, refusal_frac, repeated_frac, repeated_span_frac, topic_overlap, topic_words,
                     word_order_errors)
from .dimensions import (CURT, DIM_NORMS, DIM_SIGNALS, DIMS, FRIENDLY, SIGNAL_NORMS, Z_CLIP, dimension_score,
                         dimension_scores, dimension_signals, easy_words, fit_norms)
from .explanation import explain
from .labels import label_from_scores, label_pair, sigmoid
from .penalty import (ECHO_FULL, ECHO_OK, FULL_LOOP, MIN_DISTINCT_TRIGRAMS, MIN_WORDS, NEW_WORDS, ORDER_FULL, ORDER_OK,
                      PENALTY, REFUSAL_FULL, REFUSAL_OK, REPEAT_FULL, REPEAT_OK, SALAD_FULL, SALAD_OK, UNFINISHED_FULL,
                      UNFINISHED_OK, degeneracy_penalty, penalty_parts)
from .sides import GENERAL, GENERAL_WEIGHTS, SIGN, raw_signals, score, score_all, scorer, side_scores
from .text import STOPWORDS, content_words, paragraphs, sentences, stem, words
# helpers that feedback.hacks, feedback.pairs and the tests reach through this package (their homes:
# dimensions._is_easy, text._is_list_line, dimensions._dims_from_signals, sides._check_side)
from .dimensions import _dims_from_signals, _is_easy  # noqa: F401
from .sides import _check_side  # noqa: F401
from .text import _is_list_line  # noqa: F401

__all__ = ["score", "score_all", "scorer", "side_scores", "raw_signals", "explain", "label_pair", "label_from_scores", "sigmoid",
           "SIDES", "DIMS", "GENERAL", "GENERAL_WEIGHTS", "SIGN",
           "dimension_signals", "dimension_scores", "dimension_score", "fit_norms", "easy_words", "SIGNAL_NORMS",
           "DIM_NORMS", "DIM_SIGNALS", "FRIENDLY", "CURT", "Z_CLIP",
           "check_signals", "distinct_trigram_frac", "topic_words", "topic_overlap", "new_content_words",
           "repeated_frac", "repeated_span_frac", "refusal_frac", "word_order_errors", "is_unfinished",
           "function_word_frac", "length_pieces", "echo_frac", "PENALTY_SIGNALS", "FILLER", "FUNCTION_WORDS",
           "TASK_WORDS", "REFUSALS", "DANGLING", "SPAN", "SALAD_MIN_WORDS",
           "penalty_parts", "degeneracy_penalty", "PENALTY", "MIN_WORDS", "MIN_DISTINCT_TRIGRAMS", "FULL_LOOP",
           "REPEAT_OK", "REPEAT_FULL", "NEW_WORDS", "REFUSAL_OK", "REFUSAL_FULL", "SALAD_OK", "SALAD_FULL", "ORDER_OK",
           "ORDER_FULL", "UNFINISHED_OK", "UNFINISHED_FULL", "ECHO_OK", "ECHO_FULL",
           "words", "content_words", "stem", "sentences", "paragraphs", "STOPWORDS"]
