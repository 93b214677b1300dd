"""rlphf_lab: a hands-on lab for personalized alignment of language models.

Modules, in the order of the story:
    config       quick mode, device/dtype, cache folder, seeding
    preferences  the preference sides P1A..P3B, their prompts and combinations
    models       load SmolLM2-135M-Instruct offline; batched and streamed generation
    data         prompts, feedback stores, datasets
"""
from .config import is_quick, pick, set_seed
from .models import generate, load_policy, stream_generate
from .preferences import SIDES, combinations, parse_combination

__version__ = "0.1.0"
__all__ = ["is_quick", "pick", "set_seed", "load_policy", "generate", "stream_generate",
           "SIDES", "combinations", "parse_combination"]
