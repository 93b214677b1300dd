"""The notebooks' exercises, one module per notebook: each `check_...(your_answer)` prints
"Correct!" or "Not yet:" with the reason (exercises/report.py) and returns True or False.

    tour             00    feedback   01    reward_models    02    reward_features  03
    ppo              04    multi_objective 05    dpo       05b    soups            06    evaluation 07

Each notebook has at least three (code cells tagged "exercise"); the solved cells are in
notebooks/solutions/<notebook>.py, and tests/test_exercises.py checks that every check fails on the
starter code and passes on its solution.

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
