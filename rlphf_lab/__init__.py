"""rlphf_lab: a hands-on lab for personalized alignment of language models.

Modules, in the order of the story:
    config       quick mode, device/dtype, cache folder, seeding
    preferences  the preference sides P1A..P3B, their prompts and combinations
    models       load SmolLM2-135M-Instruct offline; batched and streamed generation
    data         prompts, feedback stores, datasets
    feedback     candidate answers, simulated annotators, the AI judge, labelled pairs
    rewards      reward models, scalarization, Reward Feature Models and personalisation
    rl           PPO with LoRA, single- and multi-objective
    soups        Personalized Soups: mixing the per-side LoRA policies
    evaluate     win rates of every method over the 8 combinations (a package; `from rlphf_lab import evaluate as E`)
    tables, plots, display, widgets, exercises, tour   what the notebooks show and check
    cli          the `rlphf-lab` command line (the long jobs)
"""
import os as _os

# Bit-for-bit reproducible MKL kernels (a resumed run equals one run): MKL otherwise picks kernels by memory
# alignment. It only takes effect if rlphf_lab is imported before torch loads MKL; tests/conftest.py sets it too.
_os.environ.setdefault("MKL_CBWR", "AUTO")

from .config import is_quick, pick, quiet_library_warnings, set_seed  # noqa: E402
from .models import generate, load_policy, stream_generate
from .preferences import SIDES, combinations, parse_combination

quiet_library_warnings()        # no red deprecation notices from transformers / PEFT / TRL in a student's cells

__version__ = "0.1.0"
__all__ = ["is_quick", "pick", "set_seed", "load_policy", "generate", "stream_generate",
           "SIDES", "combinations", "parse_combination"]
