"""The commands that make data: the model, candidate answers, labels, the hack suite, the judge.

    rlphf-lab fetch-model | generate | generate-candidates | label-pairs | add-hacks | label-raters | judge-agreement

Each parses nothing itself (cli/parser.py did) and only calls the library.
"""
from __future__ import annotations

from pathlib import Path

from .options import candidates_file, command_line, default_out, json_field, or_default, output_file, side_codes, sized


def _cmd_fetch_model(args) -> int:
    from ..models import convert_model

    path = convert_model(force=args.force)
    print(path)
    return 0


def _cmd_generate(args) -> int:
    from ..models import generate, load_policy
    from ..preferences import parse_combination

    if args.preference:
        parse_combination(args.preference)      # fail on a bad code before the model loads
    model, tokenizer = load_policy(device=args.device, dtype=args.dtype)
    for answer in generate(model, tokenizer, [args.instruction], preference=args.preference,
                           max_new_tokens=args.max_new_tokens, seed=args.seed):
        print(answer)
    return 0


def _cmd_generate_candidates(args) -> int:
    import time

    from ..data import balanced_prompts, load_prompts, partial_path, read_jsonl, replace_with, write_provenance
    from ..feedback.candidates import generate_candidates
    from ..models import load_policy

    out = output_file(or_default(args.out, default_out("generate-candidates", "candidates.jsonl")), overwrite=True)
    # resumable: an existing file is continued, unless --overwrite (then it is replaced when the new one is done)
    if out.exists() and not args.overwrite:
        # continuing is fine, mixing two settings in one file is not
        seeds = sorted({row.get("seed") for row in read_jsonl(out)})
        record = out.with_name(out.name + ".provenance.json")
        tokens = json_field(record, "max_new_tokens")
        if seeds not in ([], [args.seed]) or tokens not in (None, args.max_new_tokens):
            raise FileExistsError(f"{out} holds candidates sampled with seed {seeds} and max_new_tokens {tokens}; "
                                  f"continuing with seed {args.seed} and max_new_tokens {args.max_new_tokens} would mix "
                                  f"two settings. Nothing was changed. Pass another --out, or --overwrite to replace it.")
    if args.train_per_category is not None:
        prompts = [p for p in balanced_prompts(args.train_per_category) if args.split in (None, p["split"])]
    else:
        prompts = load_prompts(args.split)
    prompts = prompts[:sized(args.limit, 4, None)]
    model, tokenizer = load_policy(device=args.device, dtype=args.dtype)
    # --overwrite: sample into <out>.partial (resumed if a replacement was interrupted), then swap it in
    target = partial_path(out) if args.overwrite else out
    start = time.perf_counter()
    rows = generate_candidates(model, tokenizer, prompts, target, seed=args.seed, batch_size=args.batch_size,
                               max_new_tokens=args.max_new_tokens)
    if target != out:
        replace_with(target, out)
    write_provenance(out, command=command_line(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, rows=len(rows), prompts=len(prompts),
                     device=str(model.device), dtype=str(model.dtype), max_new_tokens=args.max_new_tokens,
                     note="wall time of the last (possibly resumed) run; per-row seconds are in the file")
    print(f"{len(rows)} candidates in {out}")
    return 0


def _cmd_label_pairs(args) -> int:
    import json
    import time

    from ..config import pick
    from ..data import read_jsonl, write_pairs, write_provenance
    from ..feedback.pairs import LABEL_SETS, label_candidates, label_summary

    shipped = LABEL_SETS[args.split]  # the shipped sets: noisy train labels, noise-free held-out labels
    pairs_per_prompt = or_default(args.pairs_per_prompt, shipped["pairs_per_prompt"])
    seed = or_default(args.seed, shipped["seed"])
    temperature = or_default(args.temperature, shipped["temperature"])
    sides = side_codes(args.sides)
    out = output_file(or_default(args.out, default_out("label-pairs", f"pairs_{args.split}.jsonl")),
                      args.overwrite)
    source = candidates_file(args)
    start = time.perf_counter()
    candidates = [c for c in read_jsonl(source) if c["split"] == args.split]
    prompt_ids = sorted({c["prompt_id"] for c in candidates})[:pick(8, None)]
    candidates = [c for c in candidates if c["prompt_id"] in set(prompt_ids)]
    if not candidates:
        raise ValueError(f"No {args.split} candidates in {source}; run `rlphf-lab generate-candidates` first.")
    pairs = label_candidates(candidates, sides, pairs_per_prompt=pairs_per_prompt, seed=seed, temperature=temperature,
                             tie_margin=args.tie_margin, keep_ties=True)
    summary = label_summary(pairs)
    write_pairs(out, [p for p in pairs if p["label"] != "tie"])
    write_provenance(out, command=command_line(args), seed=seed,
                     wall_time_s=time.perf_counter() - start, split=args.split, prompts=len(prompt_ids),
                     pairs_per_prompt=pairs_per_prompt, temperature=temperature,
                     tie_margin=args.tie_margin, labeller="rlphf_lab.feedback.annotators (simulated)",
                     rows=sum(s["pairs"] for s in summary.values()), per_side=summary,
                     note="texts are joined from data/candidates.jsonl by rlphf_lab.data.load_pairs")
    print(json.dumps(summary, indent=1))
    print(f"{sum(s['pairs'] for s in summary.values())} labelled pairs in {out}")
    return 0


def _cmd_add_hacks(args) -> int:
    """The candidate pool plus the hack suite's rows (rlphf_lab.feedback.hacks). Idempotent: hack rows
    already in --candidates are replaced, every other line is copied byte for byte."""
    import json
    import time

    from ..data import write_provenance, write_text_atomic
    from ..feedback.hacks import HACK_KINDS, pool_with_hacks

    source = candidates_file(args)
    out = output_file(or_default(args.out, default_out("add-hacks", "candidates.jsonl")), args.overwrite)
    start = time.perf_counter()
    lines, hacks = pool_with_hacks(source.read_text(encoding="utf-8"), seed=args.seed,
                                   split=None if args.split == "all" else args.split, source=f"--candidates {source}")
    if not hacks:
        raise ValueError(f"No {args.split} candidates of style 'none' in {source} to build hacks from.")
    text = "".join(line + "\n" for line in lines) + "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in hacks)
    write_text_atomic(out, text)
    record = source.with_name(source.name + ".provenance.json")
    sampled = json.loads(record.read_text()) if record.is_file() else None
    if sampled and sampled.get("command", "").startswith("rlphf-lab add-hacks"):
        sampled = sampled.get("source_provenance")          # an earlier add-hacks output: keep the sampling record
    write_provenance(out, command=command_line(args), seed=args.seed, wall_time_s=time.perf_counter() - start,
                     rows=len(lines) + len(hacks), normal_rows=len(lines), hack_rows=len(hacks),
                     prompts=len({h["prompt_id"] for h in hacks}), split=args.split, kinds=list(HACK_KINDS),
                     candidates=str(source), max_new_tokens=(sampled or {}).get("max_new_tokens"),
                     source_provenance=sampled,
                     note="normal rows copied unchanged from --candidates; hack rows (style hack:<kind>) rebuilt")
    print(f"{len(lines)} candidates + {len(hacks)} hack rows ({len(HACK_KINDS)} kinds x "
          f"{len({h['prompt_id'] for h in hacks})} {args.split} prompts) in {out}")
    return 0


def _cmd_label_raters(args) -> int:
    import time

    import numpy as np

    from ..data import read_jsonl, write_pairs, write_provenance
    from ..feedback.raters import DISAGREEMENT, make_population, make_rater_pairs, save_population

    level = DISAGREEMENT[args.disagreement] if args.disagreement in DISAGREEMENT else float(args.disagreement)
    n_raters = sized(args.n_raters, 5, 60)
    per_rater = sized(args.pairs_per_rater, 10, 120)
    out = Path(or_default(args.out, default_out("label-raters", f"raters_{args.disagreement}.jsonl")))
    sidecar = out.with_name(out.stem + ".raters.json")
    output_file(out, args.overwrite, sidecar)
    source = candidates_file(args)
    start = time.perf_counter()
    candidates = read_jsonl(source)
    raters = make_population(n_raters, level, seed=args.seed, temperature=args.temperature)
    pairs = make_rater_pairs(candidates, raters, pairs_per_rater=per_rater, seed=args.seed)
    write_pairs(out, pairs)
    save_population(sidecar, raters, disagreement=level, temperature=args.temperature, seed=args.seed)
    agree = float(np.mean([p["score_chosen"] > p["score_rejected"] for p in pairs]))
    write_provenance(out, command=command_line(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, disagreement=level, n_raters=n_raters,
                     pairs_per_rater=per_rater, temperature=args.temperature, rows=len(pairs),
                     raters_file=sidecar.name, chosen_has_higher_utility=round(agree, 4),
                     note="texts are joined from data/candidates.jsonl by rlphf_lab.data.load_pairs")
    print(f"{len(pairs)} pairs from {n_raters} raters (disagreement {level}) in {out}; weights in {sidecar}")
    return 0


def _cmd_judge_agreement(args) -> int:
    import json
    import time

    from ..data import load_pairs, write_provenance, write_text_atomic
    from ..feedback.judge import agreement_record, judge_agreement, sample_per_side
    from ..models import load_policy

    out = output_file(or_default(args.out, default_out("judge-agreement", "judge_agreement.json")),
                      args.overwrite)
    pairs = load_pairs(args.pairs)
    n = sized(args.n, 2, 50)
    sample = sample_per_side(pairs, n, seed=args.seed)
    model, tokenizer = load_policy(device=args.device, dtype=args.dtype)
    start = time.perf_counter()
    result = judge_agreement(model, tokenizer, sample, batch_size=args.batch_size, progress=True)
    record = agreement_record(result, sample)
    write_text_atomic(out, json.dumps(record, indent=1) + "\n")
    write_provenance(out, command=command_line(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, pairs=args.pairs, n_per_side=n,
                     agreement=round(result["agreement"], 4), device=str(model.device), dtype=str(model.dtype))
    print(json.dumps({k: v for k, v in record.items() if k not in ("pair_ids", "p_chosen")}, indent=1))
    return 0
