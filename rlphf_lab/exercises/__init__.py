"""The notebooks' exercises, one module per notebook: each `check_...(your_answer)` prints
"Correct!" or "Not yet:" with the reason (exercises/report.py) and returns True or False.

    tour             00  check_combination
    feedback         01  check_noise_temperature
    reward_models    02  check_worst_case
    reward_features  03  check_preference_prob
    ppo              04  check_token_rewards
    multi_objective  05  check_prompted_morl_reward
    dpo              05b check_dpo_loss
    soups            06  check_soup_delta

    from rlphf_lab.exercises import check_token_rewards
"""
from .dpo import check_dpo_loss
from .feedback import check_noise_temperature
from .multi_objective import check_prompted_morl_reward
from .ppo import check_token_rewards
from .report import report
from .reward_features import check_preference_prob
from .reward_models import check_worst_case
from .soups import check_soup_delta
from .tour import check_combination

__all__ = ["report", "check_combination", "check_noise_temperature", "check_worst_case", "check_preference_prob",
           "check_token_rewards", "check_prompted_morl_reward", "check_dpo_loss", "check_soup_delta"]
