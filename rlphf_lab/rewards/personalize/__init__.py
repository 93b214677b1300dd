"""Personalisation experiments (notebook 03): does a reward adapt to a new rater from k of their clicks?

The recipe of Reward Feature Models (Barreto et al. 2025), on a population of simulated raters:

1. split the raters: most train, some are held out as "new users" and a few as validation raters;
   each held-out rater's pairs are split again into an adaptation pool (the pairs we may ask them)
   and a test set;
2. train phi_theta and every training rater's w_h jointly (`rfm.train_rfm`), and choose how hard a
   new rater's w is pulled toward the population's mean weight on the validation raters (`choose_l2`);
3. for each held-out rater, freeze phi_theta and fit w from k pool pairs (`rfm.adaptation_curve`),
   starting from the population's mean weight; measure accuracy on their test pairs.

Two baselines on the same held-out raters and pairs: one reward model on everyone's pooled labels
(`rfm.train_pooled`, the same for every user, so flat in k), and a linear head fitted from the same
k pairs directly on the frozen backbone features (1729 numbers: it has to learn the user from
scratch, so it needs far more pairs). `rfm_experiment` runs all of it and returns accuracy against k.

"Adapt to you": `fit_my_weights` reads your own clicks from the FeedbackWidget's store and fits your
weights over the three preference dimensions, by the same logistic regression.

    rater_sets         RaterSet, load_rater_set, response_rows, pair_features, response_dims
    splits             RaterSplit, split_raters: training, held-out and validation raters
    experiment         rfm_experiment, evaluate_new_rater, choose_l2, curve_table, spread_table
    new_user           relabel, new_user_curves: a made-up user with chosen weights
    dimension_weights  population_table, similarity_to_mean, implied_dimension_weights, recovered_vs_true
    your_weights       pairs_for_you, click_as, labels_to_fit, UserWeights, dimension_differences, fit_my_weights
"""
from .dimension_weights import (DIM_LABELS, implied_dimension_weights, population_table, recovered_vs_true,
                                similarity_to_mean)
from .experiment import (CURVES, L2_GRID, Trained, choose_l2, curve_table, evaluate_new_rater, rfm_experiment,
                         spread_table)
from .new_user import new_user_curves, relabel
from .rater_sets import RaterSet, load_rater_set, pair_features, response_dims, response_rows
from .splits import RaterSplit, split_raters
from .your_weights import (UserWeights, click_as, dimension_differences, fit_my_weights, labels_to_fit,
                           pairs_for_you)

__all__ = ["DIM_LABELS", "CURVES", "RaterSet", "load_rater_set", "response_rows", "pair_features",
           "RaterSplit", "split_raters", "Trained", "evaluate_new_rater", "rfm_experiment", "relabel",
           "new_user_curves", "L2_GRID", "choose_l2", "curve_table", "spread_table", "population_table",
           "similarity_to_mean", "response_dims", "implied_dimension_weights", "recovered_vs_true",
           "pairs_for_you", "click_as", "labels_to_fit", "UserWeights", "dimension_differences", "fit_my_weights"]
