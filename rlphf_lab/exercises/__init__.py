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
import importlib
import pkgutil

from .report import report

# every check_... of every module here, so that `from rlphf_lab.exercises import check_token_rewards` works
__all__ = ["report"]
for _module in pkgutil.iter_modules(__path__):
    _checks = importlib.import_module(f"{__name__}.{_module.name}")
    for _name in dir(_checks):
        if _name.startswith("check_"):
            globals()[_name] = getattr(_checks, _name)
            __all__.append(_name)
