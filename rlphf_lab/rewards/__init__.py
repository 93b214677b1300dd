"""Reward models: the Bradley-Terry loss, MORLAIF scalarization of several rewards into one,
and Reward Feature Models that adapt to a new rater from a few labelled pairs.

    losses        the Bradley-Terry loss, and the logistic regression it becomes for a linear reward
    features      frozen backbone features of (instruction, response), cached on disk
    reward_model  one Bradley-Terry reward model per side (features or TRL back end), RewardScorer for PPO
    train         train and evaluate the six per-side reward models from the shipped feedback
    scalarize     MORLAIF scalarizers: K per-objective rewards -> one PPO reward
    rfm           Reward Feature Models: shared features phi_theta, one weight vector per rater
    personalize   notebook 03's experiments (a package: rater_sets, splits, experiment, new_user,
                  dimension_weights, your_weights); import it as rlphf_lab.rewards.personalize
"""
from .losses import bradley_terry_loss, fit_logistic
from .reward_model import (RewardModel, RewardScorer, load_reward_model, load_reward_models,
                           load_reward_scorer)
from .rfm import (RewardFeatureModel, adaptation_curve, choose_next_pair, feature_diff, fit_user_weights,
                  laplace_covariance, preference_accuracy, train_pooled, train_rfm)
from .scalarize import (SCALARIZERS, bernoulli_nash, contour_grid, fit_objective_weights, lower_quantile,
                        max_median, scalarize, soft_max_min, uncertainty_weighted, weighted_linear, worst_case)

__all__ = ["bradley_terry_loss", "fit_logistic", "RewardModel", "RewardScorer", "load_reward_model",
           "load_reward_models", "load_reward_scorer",
           "SCALARIZERS", "scalarize", "weighted_linear", "worst_case", "soft_max_min", "uncertainty_weighted",
           "lower_quantile", "max_median", "bernoulli_nash", "fit_objective_weights", "contour_grid",
           "RewardFeatureModel", "train_rfm", "train_pooled", "feature_diff", "preference_accuracy",
           "fit_user_weights", "laplace_covariance", "choose_next_pair", "adaptation_curve"]
