"""Feedback collection: candidate responses, simulated annotators, the AI judge, pair labelling.

    candidates   candidate responses: one sample per preference prompt (and one with none) per prompt
    annotators   the simulated annotators, one per side (a package: text, dimensions, checks, penalty,
                 sides, explanation, labels)
    hacks        a fixed suite of degenerate answers that every side must score below a normal one
    judge        AI feedback as in MORLAIF: the local model judges one principle at a time
    pairs        labelled preference pairs from the candidate pool
    raters       a simulated population of raters who disagree (for notebook 03)
    clicks       your own labels: what one click in the FeedbackWidget records (into a data.FeedbackStore)
"""
