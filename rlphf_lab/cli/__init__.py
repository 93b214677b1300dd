"""`rlphf-lab` command line: the long jobs a notebook should not run inline.

    rlphf-lab fetch-model            convert the GGUF model once into the cache
    rlphf-lab generate "Why is the sky blue?" --preference P1A+P2A+P3A
    rlphf-lab generate-candidates    sample the candidate pool (resumable)
    rlphf-lab add-hacks              append the hack suite's degenerate answers to a pool
    rlphf-lab label-pairs            label pairs with the simulated annotators
    rlphf-lab label-raters           a population of raters labels pairs (for RFM)
    rlphf-lab judge-agreement        the local model as AI judge against the annotators
    rlphf-lab train-rewards          one Bradley-Terry reward model per side
    rlphf-lab train-policy           PPO with LoRA: a side, Prompted-MORL, MORLAIF or RLHF (resumable)
    rlphf-lab train-sft              the multitask SFT baseline
    rlphf-lab evaluate               win rates over the 8 preference combinations

Every command writes under runs/<command>/ unless --out says otherwise; the shipped data in data/
is rebuilt only on purpose (`make data`, or an explicit `--out data/...`). A command never replaces
a finished artifact unless given --overwrite, and checks every option before a model loads. An
expected problem (a bad option, a missing or damaged file) is one line `error: ...` and exit code 2;
--debug (or RLPHF_DEBUG=1) shows the traceback too.
"""
# The package:  options.py            checked option types, defaults by size, input and output files
#               parser.py             every command and its options
#               feedback_commands.py  commands that make data (candidates, labels, hacks, the judge)
#               training_commands.py  commands that train and evaluate
from __future__ import annotations

import os
import sys

from .options import RUNS_DIR, check_device, default_out  # noqa: F401  (re-exported: where commands write by default)
from .parser import build_parser

EXPECTED_ERRORS = (ValueError, OSError)        # OSError: FileNotFoundError, FileExistsError, PermissionError


def main(argv=None) -> int:
    import traceback

    from ..models import ModelNotAvailableError
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:             # --help, or a bad option (printed as one line by Parser.error)
        return stop.code
    args.argv = argv
    debug = args.debug or os.environ.get("RLPHF_DEBUG", "").strip() not in ("", "0")
    try:
        check_device(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (*EXPECTED_ERRORS, ModelNotAvailableError, NotImplementedError) as err:
        if debug:
            traceback.print_exc()
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
