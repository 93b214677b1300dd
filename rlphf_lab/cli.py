"""`rlphf-lab` command line: the long jobs a notebook should not run inline.

    rlphf-lab fetch-model          convert the GGUF model once into the cache
    rlphf-lab generate "Why is the sky blue?" --preference P1A+P2A+P3A

Every command writes under runs/<command>/ unless --out says otherwise; the shipped data in data/
is rebuilt only on purpose (`make data`, or an explicit `--out data/...`). A command never replaces
a finished artifact unless given --overwrite, and checks every option before a model loads. An
expected problem (a bad option, a missing or damaged file) is one line `error: ...` and exit code 2;
--debug (or RLPHF_DEBUG=1) shows the traceback too.
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from pathlib import Path

from .config import ADAPTERS_DIR, REPO_ROOT

RUNS_DIR = REPO_ROOT / "runs"          # git-ignored: where every command writes by default


def default_out(command: str, name: str = "") -> Path:
    """The default output of a command: runs/<command>/<name>, never the shipped files in data/."""
    return RUNS_DIR / command / name if name else RUNS_DIR / command


# --------------------------------------------------------------------------------------------
# Checking options: one line naming the option, the value and what is allowed
# --------------------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (`error: argument --iterations: ...`), exit 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def whole(low: int, high: int | None = None):
    """An argparse type: a whole number in [low, high]."""
    allowed = f"a whole number >= {low}" + (f" and <= {high}" if high is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value
    return parse


def real(low: float | None = None, *, above: float | None = None):
    """An argparse type: a finite number, >= low or > above when given (NaN and inf never pass)."""
    allowed = ("a finite number" + (f" >= {low:g}" if low is not None else "")
               + (f" > {above:g}" if above is not None else ""))

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and value < low) or (above is not None and value <= above):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value
    return parse


COUNT, COUNT0, SEED = whole(1), whole(0), whole(0)
RATE = real(above=0)                     # learning rates, epochs, KL targets


def disagreement(text: str) -> str:
    """--disagreement: low, high, or a number >= 0 (kept as text: it names the output file)."""
    from .feedback.raters import DISAGREEMENT

    if text in DISAGREEMENT:
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be {' or '.join(DISAGREEMENT)} or a finite number >= 0, got {text!r}")
    return text


def _value(value, default):
    """The option's value if it was given (0 is a value, not "unset"), else `default`."""
    return default if value is None else value


def _sized(value, quick, full):
    """The option's value if it was given, else its quick-mode or full-size default."""
    from .config import pick

    return _value(value, pick(quick, full))


def _sides(text: str | None, allow_general: bool = True) -> list[str]:
    """--sides P1A,P2B (default: all six); 'general' is the RLHF baseline's rater."""
    from .feedback.annotators import GENERAL
    from .preferences import SIDES, get_preference

    if text is None:
        return list(SIDES)
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if not codes:
        raise ValueError(f"--sides {text!r} names no side; give codes like P1A,P2B ({', '.join(SIDES)}"
                         f"{', general' if allow_general else ''}).")
    return [c if allow_general and c == GENERAL else get_preference(c).code for c in codes]


def _input_file(path, option: str, hint: str) -> Path:
    """A file the command reads: missing is a FileNotFoundError that says how to make it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path}: {'a folder, not a file' if path.is_dir() else 'no such file'}; {hint}.")
    return path


def _output_file(path, overwrite: bool, *also: Path) -> Path:
    """A file the command writes (and files written beside it): refuse a folder, and refuse to
    replace an existing file unless --overwrite."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give the file to write, e.g. --out {path / 'out.jsonl'}.")
    _refuse_existing([path, *also], overwrite)
    return path


def _output_dir(path, overwrite: bool = True, inside=()) -> Path:
    """A folder the command writes into: refuse a file, and refuse to replace the named results
    inside it unless --overwrite."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file, not a folder; give a folder (it is created if needed).")
    _refuse_existing([path / name for name in inside], overwrite)
    return path


def _refuse_existing(paths, overwrite: bool) -> None:
    found = [p for p in paths if p.exists()]
    if found and not overwrite:
        listing = ", ".join(str(p) for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise FileExistsError(f"{listing} exists already; nothing was changed. To keep it, pass another --out; "
                              f"to replace it, add --overwrite.")


def _check_device(args) -> None:
    """--device and --dtype, before any model loads."""
    from .config import default_device, default_dtype

    device = default_device(getattr(args, "device", None))
    if getattr(args, "dtype", None):
        default_dtype(device, args.dtype)


def _command(args) -> str:
    """The exact command line, quoted so that it can be pasted back into a shell."""
    return "rlphf-lab " + shlex.join(args.argv)


def _resume_command(args) -> str:
    """The command line that continues an interrupted training run."""
    argv = [a for a in args.argv if a != "--overwrite"]
    return "rlphf-lab " + shlex.join(argv + ([] if "--resume" in argv else ["--resume"]))


# --------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------

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

    from .data import balanced_prompts, load_prompts, partial_path, read_jsonl, replace_with, write_provenance
    from .feedback.candidates import generate_candidates
    from .models import load_policy

    out = _output_file(_value(args.out, default_out("generate-candidates", "candidates.jsonl")), overwrite=True)
    # resumable: an existing file is continued, unless --overwrite (then it is replaced when the new one is done)
    if out.exists() and not args.overwrite:
        # continuing is fine, mixing two settings in one file is not
        seeds = sorted({row.get("seed") for row in read_jsonl(out)})
        record = out.with_name(out.name + ".provenance.json")
        tokens = _json_field(record, "max_new_tokens")
        if seeds not in ([], [args.seed]) or tokens not in (None, args.max_new_tokens):
            raise FileExistsError(f"{out} holds candidates sampled with seed {seeds} and max_new_tokens {tokens}; "
                                  f"continuing with seed {args.seed} and max_new_tokens {args.max_new_tokens} would mix "
                                  f"two settings. Nothing was changed. Pass another --out, or --overwrite to replace it.")
    if args.train_per_category is not None:
        prompts = [p for p in balanced_prompts(args.train_per_category) if args.split in (None, p["split"])]
    else:
        prompts = load_prompts(args.split)
    prompts = prompts[:_sized(args.limit, 4, None)]
    model, tokenizer = load_policy(device=args.device, dtype=args.dtype)
    # --overwrite: sample into <out>.partial (resumed if a replacement was interrupted), then swap it in
    target = partial_path(out) if args.overwrite else out
    start = time.perf_counter()
    rows = generate_candidates(model, tokenizer, prompts, target, seed=args.seed, batch_size=args.batch_size,
                               max_new_tokens=args.max_new_tokens)
    if target != out:
        replace_with(target, out)
    write_provenance(out, command=_command(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, rows=len(rows), prompts=len(prompts),
                     device=str(model.device), dtype=str(model.dtype), max_new_tokens=args.max_new_tokens,
                     note="wall time of the last (possibly resumed) run; per-row seconds are in the file")
    print(f"{len(rows)} candidates in {out}")
    return 0


def _json_field(file: Path, key: str):
    """One field of a JSON record (a provenance file), or None if the file or the field is missing."""
    import json

    try:
        return json.loads(file.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _candidates(args) -> Path:
    from .data import CANDIDATES_FILE

    path = CANDIDATES_FILE if args.candidates is None else args.candidates
    return _input_file(path, "--candidates", "make a candidate pool with `rlphf-lab generate-candidates`, or pass "
                                             "--candidates data/candidates.jsonl")


def _cmd_label_pairs(args) -> int:
    import json
    import time

    from .config import pick
    from .data import read_jsonl, write_pairs, write_provenance
    from .feedback.pairs import label_summary, make_preference_pairs, score_candidates

    train = args.split == "train"     # the shipped sets: noisy train labels, noise-free held-out labels
    pairs_per_prompt = _value(args.pairs_per_prompt, 16 if train else 10)
    seed = _value(args.seed, 0 if train else 1)
    temperature = _value(args.temperature, 0.1 if train else 0.0)
    sides = _sides(args.sides)
    out = _output_file(_value(args.out, default_out("label-pairs", f"pairs_{args.split}.jsonl")),
                       args.overwrite)
    source = _candidates(args)
    start = time.perf_counter()
    candidates = [c for c in read_jsonl(source) if c["split"] == args.split]
    prompt_ids = sorted({c["prompt_id"] for c in candidates})[:pick(8, None)]
    candidates = [c for c in candidates if c["prompt_id"] in set(prompt_ids)]
    if not candidates:
        raise ValueError(f"No {args.split} candidates in {source}; run `rlphf-lab generate-candidates` first.")
    scores = score_candidates(candidates)
    pairs = []
    for side in sides:
        pairs += make_preference_pairs(candidates, side, pairs_per_prompt=pairs_per_prompt, seed=seed,
                                       tie_margin=args.tie_margin, temperature=temperature,
                                       keep_ties=True, scores=scores)
    summary = label_summary(pairs)
    write_pairs(out, [p for p in pairs if p["label"] != "tie"])
    write_provenance(out, command=_command(args), seed=seed,
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

    from .data import write_provenance, write_text_atomic
    from .feedback.hacks import HACK_KINDS, hack_candidates, is_hack

    source = _candidates(args)
    out = _output_file(_value(args.out, default_out("add-hacks", "candidates.jsonl")), args.overwrite)
    start = time.perf_counter()
    lines, rows = [], []
    for n, line in enumerate(source.read_text(encoding="utf-8").split("\n"), 1):     # not splitlines: U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"--candidates {source}, line {n}: not JSON ({err.msg}).") from None
        if not is_hack(row):
            lines.append(line)
            rows.append(row)
    split = None if args.split == "all" else args.split
    hacks = hack_candidates(rows, seed=args.seed, split=split)
    if not hacks:
        raise ValueError(f"No {args.split} candidates of style 'none' in {source} to build hacks from.")
    text = "".join(line + "\n" for line in lines) + "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in hacks)
    write_text_atomic(out, text)
    record = source.with_name(source.name + ".provenance.json")
    sampled = json.loads(record.read_text()) if record.is_file() else None
    if sampled and sampled.get("command", "").startswith("rlphf-lab add-hacks"):
        sampled = sampled.get("source_provenance")          # an earlier add-hacks output: keep the sampling record
    write_provenance(out, command=_command(args), seed=args.seed, wall_time_s=time.perf_counter() - start,
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

    from .data import read_jsonl, write_pairs, write_provenance
    from .feedback.raters import DISAGREEMENT, make_population, make_rater_pairs, save_population

    level = DISAGREEMENT[args.disagreement] if args.disagreement in DISAGREEMENT else float(args.disagreement)
    n_raters = _sized(args.n_raters, 5, 60)
    per_rater = _sized(args.pairs_per_rater, 10, 120)
    out = Path(_value(args.out, default_out("label-raters", f"raters_{args.disagreement}.jsonl")))
    sidecar = out.with_name(out.stem + ".raters.json")
    _output_file(out, args.overwrite, sidecar)
    source = _candidates(args)
    start = time.perf_counter()
    candidates = read_jsonl(source)
    raters = make_population(n_raters, level, seed=args.seed, temperature=args.temperature)
    pairs = make_rater_pairs(candidates, raters, pairs_per_rater=per_rater, seed=args.seed)
    write_pairs(out, pairs)
    save_population(sidecar, raters, disagreement=level, temperature=args.temperature, seed=args.seed)
    agree = float(np.mean([p["score_chosen"] > p["score_rejected"] for p in pairs]))
    write_provenance(out, command=_command(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, disagreement=level, n_raters=n_raters,
                     pairs_per_rater=per_rater, temperature=args.temperature, rows=len(pairs),
                     raters_file=sidecar.name, chosen_has_higher_utility=round(agree, 4),
                     note="texts are joined from data/candidates.jsonl by rlphf_lab.data.load_pairs")
    print(f"{len(pairs)} pairs from {n_raters} raters (disagreement {level}) in {out}; weights in {sidecar}")
    return 0


def _cmd_judge_agreement(args) -> int:
    import json
    import time

    import numpy as np

    from .data import load_pairs, write_provenance, write_text_atomic
    from .feedback.judge import judge_agreement
    from .models import load_policy

    out = _output_file(_value(args.out, default_out("judge-agreement", "judge_agreement.json")),
                       args.overwrite)
    pairs = load_pairs(args.pairs)
    n = _sized(args.n, 2, 50)
    rng = np.random.default_rng(args.seed)
    sample = []
    for side in sorted({p["preference"] for p in pairs}):
        group = [p for p in pairs if p["preference"] == side]
        sample += [group[i] for i in sorted(rng.choice(len(group), size=min(n, len(group)), replace=False))]
    model, tokenizer = load_policy(device=args.device, dtype=args.dtype)
    start = time.perf_counter()
    result = judge_agreement(model, tokenizer, sample, batch_size=args.batch_size, progress=True)
    record = {k: v for k, v in result.items() if k != "p_chosen"}
    record["pair_ids"] = [p["pair_id"] for p in sample]
    record["p_chosen"] = [round(p, 4) for p in result["p_chosen"]]
    write_text_atomic(out, json.dumps(record, indent=1) + "\n")
    write_provenance(out, command=_command(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, pairs=args.pairs, n_per_side=n,
                     agreement=round(result["agreement"], 4), device=str(model.device), dtype=str(model.dtype))
    print(json.dumps({k: v for k, v in record.items() if k not in ("pair_ids", "p_chosen")}, indent=1))
    return 0


def _objective(args, score_fn):
    """The training objective the options ask for (built once with a toy scorer to check them)."""
    from .rl import multi

    scalarizer = _value(args.scalarizer, "weighted_linear")
    if args.preference:
        return multi.personalized_soups(args.preference, score_fn)
    if args.prompted_morl:
        return multi.prompted_morl(score_fn, scalarizer=scalarizer)
    if args.morlaif:
        if args.weights is not None and not any(w > 0 for w in args.weights):
            raise ValueError(f"--weights {' '.join(f'{w:g}' for w in args.weights)}: give at least one weight > 0.")
        return multi.morlaif(args.morlaif, score_fn, scalarizer=scalarizer, weights=args.weights)
    return multi.rlhf(score_fn)


def _cmd_train_policy(args) -> int:
    from .data import load_prompts, split_dev
    from .models import load_policy
    from .rl import PPOConfig, PPOTrainer, latest_checkpoint, multi
    from .rl.policy import make_accelerator
    from .rl.run_folder import check_fresh_start, checkpoint_folders

    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other: --resume continues the run in --out, "
                         "--overwrite replaces it with a new one.")
    if args.weights is not None and not args.morlaif:
        raise ValueError("--weights are MORLAIF's weights, one per side of --morlaif; leave them out otherwise.")
    objective = _objective(args, multi.toy_length_score_fn)      # bad codes, scalarizer, weights: before any model
    batch = _sized(args.batch_size, 4, 16)
    if args.mini_batch_size is not None and args.mini_batch_size > batch:
        raise ValueError(f"--mini-batch-size {args.mini_batch_size} is larger than the batch ({batch} rollouts); "
                         f"use a divisor of --batch-size.")
    out = _output_dir(_value(args.out, default_out("policies", f"{args.reward}/{objective.name}")))
    config = PPOConfig(output_dir=str(out), iterations=_sized(args.iterations, 2, 60), batch_size=batch,
                       mini_batch_size=_value(args.mini_batch_size, min(4, batch)),
                       ppo_epochs=args.ppo_epochs, max_new_tokens=_sized(args.max_new_tokens, 16, 64),
                       learning_rate=args.learning_rate, init_kl_coef=args.init_kl_coef, seed=args.seed,
                       save_every=args.save_every, reward_weights=objective.reward_weights,
                       missing_eos_penalty=args.missing_eos_penalty, target_kl=args.target_kl,
                       horizon=args.kl_horizon, eval_every=args.eval_every)
    if not (args.resume and checkpoint_folders(out)):     # a resume with a checkpoint is checked by the trainer
        check_fresh_start(out, overwrite=args.overwrite, resume=args.resume)
    score_fn = multi.load_score_fn(args.reward)
    objective = _objective(args, score_fn)
    accelerator = make_accelerator()              # one process, or each process of `accelerate launch`
    model, tokenizer = load_policy(device=str(accelerator.device), dtype=args.dtype)
    # PPO trains on the train split minus a small dev set, on which it logs held-out metrics
    train, dev = split_dev(load_prompts("train"))
    prompts = [p["instruction"] for p in train[:args.limit]]
    eval_prompts = [p["instruction"] for p in dev[:args.eval_prompts]] if args.eval_every else None
    trainer = PPOTrainer(config, model, tokenizer, prompts, accelerator=accelerator, eval_prompts=eval_prompts,
                         judge_fn=multi.judge_fn(objective) if args.reward == "rm" else None,
                         **objective.trainer_kwargs())
    try:
        history = trainer.train(resume=args.resume, command=_command(args), overwrite=args.overwrite)
    except KeyboardInterrupt:
        last = latest_checkpoint(out)
        if last is None:
            where = f"before the first checkpoint (--save-every {args.save_every}); nothing to resume: rerun"
        else:
            where = f"the last checkpoint is {last}; continue with"
        print(f"interrupted: {where} `{_resume_command(args) if last else _command(args)}`", file=sys.stderr)
        return 130
    if accelerator.is_main_process and history:
        first, last = history[0], history[-1]
        print(f"{objective.name}: reward {first['reward/score']:.3f} -> {last['reward/score']:.3f}, "
              f"KL {last['kl']:.2f}, length {first['response_length']:.0f} -> {last['response_length']:.0f} tokens; "
              f"adapter in {config.output_dir}/adapter")
    return 0


def _cmd_train_sft(args) -> int:
    from .config import pick
    from .data import read_jsonl
    from .rl.sft import train_multitask_sft

    out = _output_dir(_value(args.out, default_out("policies", "multitask")), args.overwrite, ["adapter"])
    candidates = read_jsonl(_candidates(args))
    summary = train_multitask_sft(candidates, out, epochs=args.epochs, batch_size=args.batch_size,
                                  max_steps=args.max_steps if args.max_steps is not None else pick(2, -1),
                                  learning_rate=args.learning_rate, seed=args.seed, command=_command(args))
    print(f"multitask SFT: {summary['examples']} examples, {summary['steps']} steps, loss {summary['loss']:.3f}, "
          f"{summary['wall_time_s']} s; adapter in {out / 'adapter'}")
    return 0


EVALUATION_FILES = ("verdicts.jsonl", "win_rates.csv", "win_rates_by_side.csv", "mean_scores.csv",
                    "soup_vs_others.csv", "win_rates.md", "win_rates.csv.provenance.json")


def _cmd_evaluate(args) -> int:
    import time

    from . import evaluate as E
    from .data import load_prompts, read_jsonl, write_jsonl, write_provenance, write_text_atomic
    from .models import load_policy

    out = Path(_value(args.out, default_out("evaluate")))
    adapters = Path(_value(args.adapters, ADAPTERS_DIR))
    if not adapters.is_dir():
        raise FileNotFoundError(f"--adapters {adapters}: no such folder; pass the folder that holds <method>/adapter "
                                f"(the shipped ones are in {ADAPTERS_DIR}).")
    responses_file = out / "responses.jsonl"
    generating = args.regenerate or not responses_file.exists()
    results = ((["responses.jsonl", "responses.jsonl.provenance.json"] if generating else [])
               + ([] if args.generate_only else [*EVALUATION_FILES, *(["reward_scores.csv"] if args.reward_scores else []),
                                                *(["ai_judge.jsonl"] if args.ai_judge else [])]))
    _output_dir(out, args.overwrite, results)
    start = time.perf_counter()
    model = tokenizer = None
    if generating:
        wanted = tuple(args.methods.split(",")) if args.methods else E.METHODS + E.EXTRA_METHODS
        unknown = [m for m in wanted if m not in E.METHOD_SPEC]
        if unknown:
            raise ValueError(f"Unknown methods {unknown}; choose from {', '.join(E.METHOD_SPEC)}.")
        methods = E.available_methods(adapters, [m for m in wanted if m != E.BASELINE])
        missing = [m for m in wanted if m not in methods and m != E.BASELINE]
        if missing:
            print(f"note: no adapters for {missing} in {adapters}; evaluating {methods} only "
                  f"(train them with `make artifacts`).", file=sys.stderr)
        prompts = load_prompts("eval", limit=_sized(args.limit, 4, None))
        model, tokenizer = load_policy()
        rows = E.generate_responses(model, tokenizer, adapters, prompts, methods=methods,
                                    max_new_tokens=args.max_new_tokens, seed=args.seed, batch_size=args.batch_size)
        write_jsonl(responses_file, rows)
        write_provenance(responses_file, command=_command(args), seed=args.seed,
                         wall_time_s=time.perf_counter() - start, prompts=len(prompts), methods=methods,
                         max_new_tokens=args.max_new_tokens, device=str(model.device), adapters=str(adapters))
        print(f"{len(rows)} answers in {responses_file}")
        if args.generate_only:
            return 0
    rows = read_jsonl(responses_file)
    summary = E.evaluation_tables(rows, seed=args.seed)
    write_jsonl(out / "verdicts.jsonl", summary["verdicts"])
    if args.reward_scores:
        from .rewards import load_reward_scorer

        summary["reward_scores"] = E.mean_reward_scores(rows, load_reward_scorer())
    for name in ("win_rates", "win_rates_by_side", "mean_scores", "soup_vs_others", "reward_scores"):
        if name in summary:
            E.write_csv(out / f"{name}.csv", summary[name])
    if args.ai_judge:
        if model is None:
            model, tokenizer = load_policy()
        ai_rows = E.ai_judge_verdicts(model, tokenizer, rows, summary["verdicts"], n=args.ai_judge, seed=args.seed)
        write_jsonl(out / "ai_judge.jsonl", ai_rows)
        summary["ai_judge"] = E.agreement(ai_rows)
    report = E.report_markdown(summary)
    write_text_atomic(out / "win_rates.md", report)
    write_provenance(out / "win_rates.csv", command=_command(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, responses=str(responses_file),
                     ai_judge=summary.get("ai_judge"))
    print(report)
    return 0


def _cmd_train_rewards(args) -> int:
    import time

    from .data import load_pairs, read_jsonl, write_provenance
    from .preferences import SIDES
    from .rewards import train as T

    sides = _sides(args.sides)
    out_root = _output_dir(_value(args.out, default_out("train-rewards")), args.overwrite,
                           [f"{args.backend}/{side}" for side in sides])
    candidates = read_jsonl(_candidates(args))
    train_pairs, eval_pairs = load_pairs(args.train_pairs), load_pairs(args.eval_pairs)
    start = time.perf_counter()
    if args.backend == "features":
        from .models import load_policy

        model, tokenizer = load_policy()
        rows = T.train_feature_reward_models(model, tokenizer, candidates, train_pairs, eval_pairs, sides,
                                             out_root=out_root, seed=args.seed, epochs=args.epochs)
    else:
        rows = T.train_trl_reward_models(candidates, train_pairs, eval_pairs, sides, out_root=out_root,
                                         max_steps=args.max_steps, seed=args.seed)
    csv_path = T.update_accuracy_csv(out_root / "accuracy.csv", rows)
    # all six sides: <backend>.provenance.json; a subset: <backend>/<sides>.provenance.json beside their folders
    record = out_root / args.backend if sides == list(SIDES) else out_root / args.backend / "+".join(sides)
    write_provenance(record, command=_command(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, accuracy=rows,
                     train_pairs=args.train_pairs, eval_pairs=args.eval_pairs)
    for r in rows:
        print(f"{r['side']} [{r['backend']}] train acc {r['train_accuracy']:.3f}  eval acc {r['eval_accuracy']:.3f}  "
              f"({r['n_train']} train / {r['n_eval']} eval pairs, {r['seconds']} s)")
    print(f"accuracy table: {csv_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    # --debug works before or after the command name (SUPPRESS: a subcommand does not reset it)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error (also RLPHF_DEBUG=1)")
    parser = Parser(prog="rlphf-lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback of an error (also RLPHF_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, func, about: str):
        p = sub.add_parser(name, help=about, parents=[debug])
        p.set_defaults(func=func)
        return p

    def overwrite(p):
        p.add_argument("--overwrite", action="store_true",
                       help="replace an existing result in --out (without it the command refuses and changes nothing)")

    def device(p):
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA when present)")
        p.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: bf16 where fast)")

    p = command("fetch-model", _cmd_fetch_model, "convert SmolLM2-135M-Instruct from its GGUF file into the cache")
    p.add_argument("--force", action="store_true", help="convert again even if the cache exists")

    p = command("generate", _cmd_generate, "answer one instruction, optionally under a preference combination")
    p.add_argument("instruction")
    p.add_argument("--preference", default=None, help='e.g. "P1A+P2B+P3A"')
    p.add_argument("--max-new-tokens", type=COUNT, default=128)
    p.add_argument("--seed", type=SEED, default=0)
    device(p)

    p = command("train-rewards", _cmd_train_rewards, "train one Bradley-Terry reward model per preference side")
    p.add_argument("--backend", choices=["features", "trl"], default="features",
                   help="features: frozen backbone + small head (seconds); trl: RewardTrainer + LoRA (slow on CPU)")
    p.add_argument("--sides", default=None, help="comma-separated side codes (default: all six), or 'general'")
    p.add_argument("--train-pairs", default="pairs_train", help="shipped pair set or path (default pairs_train)")
    p.add_argument("--eval-pairs", default="pairs_eval", help="shipped pair set or path (default pairs_eval)")
    p.add_argument("--candidates", default=None, help="candidate pool the pairs refer to (default data/candidates.jsonl)")
    p.add_argument("--epochs", type=COUNT, default=300, help="features back end: full-batch epochs")
    p.add_argument("--max-steps", type=COUNT, default=None, help="trl back end: optimizer steps (default one epoch)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", default=None,
                   help="output root (default runs/train-rewards; the shipped ones: data/reward_models)")
    overwrite(p)

    p = command("train-sft", _cmd_train_sft,
                "multitask SFT baseline: LoRA fine-tuning on every combination's preferred responses")
    p.add_argument("--epochs", type=RATE, default=2.0)
    p.add_argument("--batch-size", type=COUNT, default=8)
    p.add_argument("--max-steps", type=COUNT, default=None, help="stop after n optimizer steps (quick mode: 2)")
    p.add_argument("--learning-rate", type=RATE, default=2e-4)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--candidates", default=None, help="default data/candidates.jsonl")
    p.add_argument("--out", default=None, help="output folder (default runs/policies/multitask)")
    overwrite(p)

    p = command("evaluate", _cmd_evaluate, "win rates of every method against the vanilla model over the 8 combinations")
    p.add_argument("--adapters", default=None, help="folder of trained adapters (default data/adapters)")
    p.add_argument("--out", default=None, help="output folder (default runs/evaluate; the shipped one: data/evaluation)")
    p.add_argument("--limit", type=COUNT, default=None, help="first n eval prompts (quick mode: 4)")
    p.add_argument("--max-new-tokens", type=COUNT, default=128)
    p.add_argument("--batch-size", type=COUNT, default=16)
    p.add_argument("--regenerate", action="store_true", help="sample new answers even if OUT/responses.jsonl exists")
    p.add_argument("--generate-only", action="store_true", help="write responses.jsonl and stop (e.g. on a GPU)")
    p.add_argument("--methods", default=None, help="comma-separated subset, e.g. P2A,P2B (default: all; vanilla always)")
    p.add_argument("--ai-judge", type=COUNT0, default=0, metavar="N", help="also ask the AI judge on N sampled comparisons")
    p.add_argument("--reward-scores", action="store_true",
                   help="also score every answer with the shipped reward models (reward hacking or no learning?)")
    p.add_argument("--seed", type=SEED, default=0)
    overwrite(p)

    p = command("generate-candidates", _cmd_generate_candidates,
                "sample one response per prompt and preference prompt (resumable)")
    p.add_argument("--split", default=None, choices=["train", "eval"], help="default: both")
    p.add_argument("--limit", type=COUNT, default=None, help="first n prompts only (quick mode: 4)")
    p.add_argument("--train-per-category", type=COUNT, default=None,
                   help="all eval prompts + the first n train prompts of each category (default: all prompts)")
    p.add_argument("--out", default=None,
                   help="JSONL file, continued if it exists (default runs/generate-candidates/candidates.jsonl; "
                        "the shipped one: data/candidates.jsonl)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--batch-size", type=COUNT, default=56)
    p.add_argument("--max-new-tokens", type=COUNT, default=128)
    device(p)
    overwrite(p)

    p = command("label-pairs", _cmd_label_pairs, "label candidate pairs with the simulated annotators (all six sides)")
    p.add_argument("--split", default="train", choices=["train", "eval"])
    p.add_argument("--pairs-per-prompt", type=whole(1, 21), default=None,
                   help="per side and prompt, 1..21 (default: train 16, eval 10)")
    p.add_argument("--seed", type=SEED, default=None, help="default: train 0, eval 1")
    p.add_argument("--temperature", type=real(low=0), default=None,
                   help="Bradley-Terry label noise (default: train 0.1, eval 0 = the annotator's own ranking)")
    p.add_argument("--tie-margin", type=real(low=0), default=0.25)
    p.add_argument("--sides", default=None, help="comma-separated, default all six; 'general' for the RLHF baseline's rater")
    p.add_argument("--candidates", default=None, help="default data/candidates.jsonl")
    p.add_argument("--out", default=None, help="default runs/label-pairs/pairs_<split>.jsonl")
    overwrite(p)

    p = command("add-hacks", _cmd_add_hacks,
                "the candidate pool plus degenerate answers (hack suite) for the reward models to rank low")
    p.add_argument("--candidates", default=None, help="default data/candidates.jsonl")
    p.add_argument("--split", default="train", choices=["train", "eval", "all"],
                   help="prompts that get hack rows (default train)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", default=None,
                   help="default runs/add-hacks/candidates.jsonl (the pool to label: data/candidates.jsonl)")
    overwrite(p)

    p = command("label-raters", _cmd_label_raters, "a population of simulated raters labels random pairs (for RFM)")
    p.add_argument("--disagreement", type=disagreement, default="low", help="low (0.25), high (1.5) or a number >= 0")
    p.add_argument("--n-raters", type=COUNT, default=None, help="default 60 (quick: 5)")
    p.add_argument("--pairs-per-rater", type=COUNT, default=None, help="default 120 (quick: 10)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--temperature", type=real(above=0), default=0.3)
    p.add_argument("--candidates", default=None, help="default data/candidates.jsonl")
    p.add_argument("--out", default=None, help="default runs/label-raters/raters_<disagreement>.jsonl")
    overwrite(p)

    p = command("judge-agreement", _cmd_judge_agreement, "how often the local model as judge agrees with the annotators")
    p.add_argument("--n", type=COUNT, default=None, help="pairs per side (default 50, quick: 2)")
    p.add_argument("--pairs", default="pairs_eval", help="shipped set name or path")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--batch-size", type=COUNT, default=8)
    p.add_argument("--out", default=None, help="default runs/judge-agreement/judge_agreement.json")
    device(p)
    overwrite(p)

    p = command("train-policy", _cmd_train_policy, "PPO with LoRA: one preference side, Prompted-MORL, MORLAIF or RLHF")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--preference", help="Personalized Soups: one side's policy, e.g. P2A")
    which.add_argument("--prompted-morl", action="store_true", help="one policy, random preference prompts")
    which.add_argument("--morlaif", metavar="SIDES", help="several rewards scalarized, e.g. P1A,P2A,P3A")
    which.add_argument("--rlhf", action="store_true", help="baseline: one 'generally better' reward")
    p.add_argument("--scalarizer", default=None, help="MORLAIF / Prompted-MORL scalarizer (default weighted_linear)")
    p.add_argument("--weights", type=real(low=0), nargs="+", default=None,
                   help="MORLAIF weights, one per side, >= 0 (at least one > 0)")
    p.add_argument("--reward", default="rm", choices=["rm", "toy-length"],
                   help="rm: trained reward models; toy-length: a word-count toy for demos")
    p.add_argument("--iterations", type=COUNT, default=None, help="PPO iterations (quick mode: 2)")
    p.add_argument("--batch-size", type=COUNT, default=None, help="rollouts per iteration (quick mode: 4)")
    p.add_argument("--mini-batch-size", type=COUNT, default=None,
                   help="rollouts per gradient step (default 4, at most the batch)")
    p.add_argument("--ppo-epochs", type=COUNT, default=4)
    p.add_argument("--max-new-tokens", type=COUNT, default=None, help="quick mode: 16, else 64")
    p.add_argument("--learning-rate", type=RATE, default=1e-4)
    p.add_argument("--init-kl-coef", type=real(low=0), default=0.2)
    p.add_argument("--target-kl", type=RATE, default=6.0, help="KL per answer (nats) the adaptive controller aims at")
    p.add_argument("--kl-horizon", type=COUNT, default=None,
                   help="adaptive KL horizon in samples (default: fitted to the run, iterations x batch / 10)")
    p.add_argument("--missing-eos-penalty", type=real(low=0), default=1.0,
                   help="subtracted from the normalised score of an answer cut off before EOS (TRL's RLOO/GRPO)")
    p.add_argument("--eval-every", type=COUNT0, default=0,
                   help="held-out reward-model and annotator scores on dev prompts every N iterations (0: off)")
    p.add_argument("--eval-prompts", type=COUNT, default=16, help="how many dev prompts the held-out metrics use")
    p.add_argument("--limit", type=COUNT, default=None, help="train on the first n prompts only")
    p.add_argument("--out", default=None, help="output folder (default runs/policies/REWARD/NAME)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--save-every", type=COUNT0, default=10, help="checkpoint every N iterations (0: only at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --out (its settings must be this command's)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out (the old one is kept until the new one is complete)")
    p.add_argument("--dtype", default=None)
    return parser


# Problems a user can cause and fix: one line, exit code 2. Anything else is a bug: full traceback.
EXPECTED_ERRORS = (ValueError, OSError)        # OSError: FileNotFoundError, FileExistsError, PermissionError


def main(argv=None) -> int:
    import traceback

    from .models import ModelNotAvailableError

    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing")   # transformers 5 noise from PEFT
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:             # --help, or a bad option (printed as one line by Parser.error)
        return stop.code
    args.argv = argv
    debug = args.debug or os.environ.get("RLPHF_DEBUG", "").strip() not in ("", "0")
    try:
        _check_device(args)
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
