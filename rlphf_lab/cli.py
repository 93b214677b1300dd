"""`rlphf-lab` command line: the long jobs a notebook should not run inline.

    rlphf-lab fetch-model          convert the GGUF model once into the cache
    rlphf-lab generate "Why is the sky blue?" --preference P1A+P2A+P3A
"""
from __future__ import annotations

import argparse
import sys


def _cmd_fetch_model(args) -> int:
    from .models import convert_model

    path = convert_model(force=args.force)
    print(path)
    return 0


def _cmd_generate(args) -> int:
    from .models import generate, load_policy
    from .preferences import parse_combination

    if args.preference:
        parse_combination(args.preference)      # fail on a bad code before the model loads
    model, tokenizer = load_policy(device=args.device, dtype=args.dtype)
    for answer in generate(model, tokenizer, [args.instruction], preference=args.preference,
                           max_new_tokens=args.max_new_tokens, seed=args.seed):
        print(answer)
    return 0


def _cmd_generate_candidates(args) -> int:
    import time

    from .config import pick
    from .data import DATA_DIR, load_prompts, write_provenance
    from .feedback.candidates import generate_candidates
    from .models import load_policy

    out = args.out or DATA_DIR / "candidates.jsonl"
    prompts = load_prompts(args.split, limit=args.limit if args.limit is not None else pick(4, None))
    model, tokenizer = load_policy(device=args.device, dtype=args.dtype)
    start = time.perf_counter()
    rows = generate_candidates(model, tokenizer, prompts, out, seed=args.seed, batch_size=args.batch_size,
                               max_new_tokens=args.max_new_tokens)
    write_provenance(out, command="rlphf-lab " + " ".join(sys.argv[1:]), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, rows=len(rows), prompts=len(prompts),
                     device=str(model.device), dtype=str(model.dtype), max_new_tokens=args.max_new_tokens,
                     note="wall time of the last (possibly resumed) run; per-row seconds are in the file")
    print(f"{len(rows)} candidates in {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlphf-lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fetch-model", help="convert SmolLM2-135M-Instruct from its GGUF file into the cache")
    p.add_argument("--force", action="store_true", help="convert again even if the cache exists")
    p.set_defaults(func=_cmd_fetch_model)

    p = sub.add_parser("generate", help="answer one instruction, optionally under a preference combination")
    p.add_argument("instruction")
    p.add_argument("--preference", default=None, help='e.g. "P1A+P2B+P3A"')
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("generate-candidates", help="sample one response per prompt and preference prompt (resumable)")
    p.add_argument("--split", default=None, choices=["train", "eval"], help="default: both")
    p.add_argument("--limit", type=int, default=None, help="first n prompts only (quick mode: 4)")
    p.add_argument("--out", default=None, help="JSONL file (default data/candidates.jsonl)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=56)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.set_defaults(func=_cmd_generate_candidates)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:      # bad input: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
