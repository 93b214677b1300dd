"""`rlphf-lab` command line: the long jobs a notebook should not run inline.

    rlphf-lab fetch-model          convert the GGUF model once into the cache
    rlphf-lab generate "Why is the sky blue?" --preference P1A+P2A+P3A
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    from .data import DATA_DIR, balanced_prompts, load_prompts, write_provenance
    from .feedback.candidates import generate_candidates
    from .models import load_policy

    out = args.out or DATA_DIR / "candidates.jsonl"
    if args.train_per_category is not None:
        prompts = [p for p in balanced_prompts(args.train_per_category) if args.split in (None, p["split"])]
    else:
        prompts = load_prompts(args.split)
    prompts = prompts[:args.limit if args.limit is not None else pick(4, None)]
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


def _feedback_out(args, name: str):
    """Where a feedback command writes: --out, else data/feedback/ (quick mode: the cache, so the
    shipped sets are never overwritten by a small run)."""
    from pathlib import Path

    from .config import cache_dir, is_quick
    from .data import FEEDBACK_DIR

    if args.out:
        return Path(args.out)
    return (cache_dir() / "feedback_quick" if is_quick() else FEEDBACK_DIR) / name


def _cmd_label_pairs(args) -> int:
    import json
    import time

    from .config import pick
    from .data import CANDIDATES_FILE, read_jsonl, write_pairs, write_provenance
    from .feedback.pairs import label_summary, make_preference_pairs, score_candidates
    from .preferences import SIDES

    start = time.perf_counter()
    train = args.split == "train"     # the shipped sets: noisy train labels, noise-free held-out labels
    args.pairs_per_prompt = args.pairs_per_prompt or (16 if train else 10)
    args.seed = args.seed if args.seed is not None else (0 if train else 1)
    args.temperature = args.temperature if args.temperature is not None else (0.1 if train else 0.0)
    candidates = [c for c in read_jsonl(args.candidates or CANDIDATES_FILE) if c["split"] == args.split]
    prompt_ids = sorted({c["prompt_id"] for c in candidates})[:pick(8, None)]
    candidates = [c for c in candidates if c["prompt_id"] in set(prompt_ids)]
    if not candidates:
        raise ValueError(f"No {args.split} candidates in {args.candidates or CANDIDATES_FILE}; "
                         f"run `rlphf-lab generate-candidates` first.")
    sides = args.sides.split(",") if args.sides else SIDES
    scores = score_candidates(candidates)
    pairs = []
    for side in sides:
        pairs += make_preference_pairs(candidates, side, pairs_per_prompt=args.pairs_per_prompt, seed=args.seed,
                                       tie_margin=args.tie_margin, temperature=args.temperature,
                                       keep_ties=True, scores=scores)
    summary = label_summary(pairs)
    out = _feedback_out(args, f"pairs_{args.split}.jsonl")
    write_pairs(out, [p for p in pairs if p["label"] != "tie"])
    write_provenance(out, command="rlphf-lab " + " ".join(sys.argv[1:]), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, split=args.split, prompts=len(prompt_ids),
                     pairs_per_prompt=args.pairs_per_prompt, temperature=args.temperature,
                     tie_margin=args.tie_margin, labeller="rlphf_lab.feedback.annotators (simulated)",
                     rows=sum(s["pairs"] for s in summary.values()), per_side=summary,
                     note="texts are joined from data/candidates.jsonl by rlphf_lab.data.load_pairs")
    print(json.dumps(summary, indent=1))
    print(f"{sum(s['pairs'] for s in summary.values())} labelled pairs in {out}")
    return 0


def _cmd_label_raters(args) -> int:
    import time

    import numpy as np

    from .config import pick
    from .data import CANDIDATES_FILE, read_jsonl, write_pairs, write_provenance
    from .feedback.raters import DISAGREEMENT, make_population, make_rater_pairs, save_population

    start = time.perf_counter()
    disagreement = DISAGREEMENT.get(args.disagreement) or float(args.disagreement)
    n_raters = args.n_raters or pick(5, 60)
    per_rater = args.pairs_per_rater or pick(10, 120)
    candidates = read_jsonl(args.candidates or CANDIDATES_FILE)
    raters = make_population(n_raters, disagreement, seed=args.seed, temperature=args.temperature)
    pairs = make_rater_pairs(candidates, raters, pairs_per_rater=per_rater, seed=args.seed)
    out = _feedback_out(args, f"raters_{args.disagreement}.jsonl")
    write_pairs(out, pairs)
    sidecar = save_population(out.with_name(out.stem + ".raters.json"), raters, disagreement=disagreement,
                              temperature=args.temperature, seed=args.seed)
    agree = float(np.mean([p["score_chosen"] > p["score_rejected"] for p in pairs]))
    write_provenance(out, command="rlphf-lab " + " ".join(sys.argv[1:]), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, disagreement=disagreement, n_raters=n_raters,
                     pairs_per_rater=per_rater, temperature=args.temperature, rows=len(pairs),
                     raters_file=sidecar.name, chosen_has_higher_utility=round(agree, 4),
                     note="texts are joined from data/candidates.jsonl by rlphf_lab.data.load_pairs")
    print(f"{len(pairs)} pairs from {n_raters} raters (disagreement {disagreement}) in {out}; weights in {sidecar}")
    return 0


def _cmd_judge_agreement(args) -> int:
    import json
    import time

    import numpy as np

    from .config import pick
    from .data import load_pairs, write_provenance
    from .feedback.judge import judge_agreement
    from .models import load_policy

    pairs = load_pairs(args.pairs)
    n = args.n if args.n is not None else pick(2, 50)
    rng = np.random.default_rng(args.seed)
    sample = []
    for side in sorted({p["preference"] for p in pairs}):
        group = [p for p in pairs if p["preference"] == side]
        sample += [group[i] for i in sorted(rng.choice(len(group), size=min(n, len(group)), replace=False))]
    model, tokenizer = load_policy(device=args.device, dtype=args.dtype)
    start = time.perf_counter()
    result = judge_agreement(model, tokenizer, sample, batch_size=args.batch_size, progress=True)
    out = _feedback_out(args, "judge_agreement.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {k: v for k, v in result.items() if k != "p_chosen"}
    record["pair_ids"] = [p["pair_id"] for p in sample]
    record["p_chosen"] = [round(p, 4) for p in result["p_chosen"]]
    out.write_text(json.dumps(record, indent=1) + "\n")
    write_provenance(out, command="rlphf-lab " + " ".join(sys.argv[1:]), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, pairs=args.pairs, n_per_side=n,
                     agreement=round(result["agreement"], 4), device=str(model.device), dtype=str(model.dtype))
    print(json.dumps({k: v for k, v in record.items() if k not in ("pair_ids", "p_chosen")}, indent=1))
    return 0


def _cmd_train_policy(args) -> int:
    from .config import REPO_ROOT, pick
    from .data import load_prompts, split_dev
    from .models import load_policy
    from .rl import PPOConfig, PPOTrainer, multi
    from .rl.trainer import make_accelerator

    try:
        score_fn = multi.load_score_fn(args.reward)
    except NotImplementedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    scalarizer = args.scalarizer or "weighted_linear"
    if args.preference:
        objective = multi.personalized_soups(args.preference, score_fn)
    elif args.prompted_morl:
        objective = multi.prompted_morl(score_fn, scalarizer=scalarizer)
    elif args.morlaif:
        objective = multi.morlaif(args.morlaif, score_fn, scalarizer=scalarizer, weights=args.weights)
    else:
        objective = multi.rlhf(score_fn)
    batch = args.batch_size or pick(4, 16)
    config = PPOConfig(output_dir=str(args.out or REPO_ROOT / "runs" / "policies" / args.reward / objective.name),
                       iterations=args.iterations or pick(2, 60), batch_size=batch,
                       mini_batch_size=min(args.mini_batch_size, batch), ppo_epochs=args.ppo_epochs,
                       max_new_tokens=args.max_new_tokens or pick(16, 64), learning_rate=args.learning_rate,
                       init_kl_coef=args.init_kl_coef, seed=args.seed, save_every=args.save_every,
                       reward_weights=objective.reward_weights, missing_eos_penalty=args.missing_eos_penalty,
                       target_kl=args.target_kl, horizon=args.kl_horizon, eval_every=args.eval_every)
    accelerator = make_accelerator()              # one process, or each process of `accelerate launch`
    model, tokenizer = load_policy(device=str(accelerator.device), dtype=args.dtype)
    # PPO trains on the train split minus a small dev set, on which it logs held-out metrics
    train, dev = split_dev(load_prompts("train"))
    prompts = [p["instruction"] for p in train[:args.limit]]
    eval_prompts = [p["instruction"] for p in dev[:args.eval_prompts]] if args.eval_every else None
    trainer = PPOTrainer(config, model, tokenizer, prompts, accelerator=accelerator, eval_prompts=eval_prompts,
                         judge_fn=multi.judge_fn(objective) if args.reward == "rm" else None,
                         **objective.trainer_kwargs())
    history = trainer.train(resume=args.resume, command="rlphf-lab " + " ".join(sys.argv[1:]))
    if accelerator.is_main_process and history:
        first, last = history[0], history[-1]
        print(f"{objective.name}: reward {first['reward/score']:.3f} -> {last['reward/score']:.3f}, "
              f"KL {last['kl']:.2f}, length {first['response_length']:.0f} -> {last['response_length']:.0f} tokens; "
              f"adapter in {config.output_dir}/adapter")
    return 0


def _cmd_train_sft(args) -> int:
    from .config import REPO_ROOT, pick
    from .data import CANDIDATES_FILE, read_jsonl
    from .rl.sft import train_multitask_sft

    candidates = read_jsonl(CANDIDATES_FILE)
    out = Path(args.out) if args.out else REPO_ROOT / "runs" / "policies" / "multitask"
    summary = train_multitask_sft(candidates, out, epochs=args.epochs, batch_size=args.batch_size,
                                  max_steps=args.max_steps if args.max_steps is not None else pick(2, -1),
                                  learning_rate=args.learning_rate, seed=args.seed,
                                  command="rlphf-lab " + " ".join(sys.argv[1:]))
    print(f"multitask SFT: {summary['examples']} examples, {summary['steps']} steps, loss {summary['loss']:.3f}, "
          f"{summary['wall_time_s']} s; adapter in {out / 'adapter'}")
    return 0


def _cmd_evaluate(args) -> int:
    import time

    from . import evaluate as E
    from .config import pick
    from .data import DATA_DIR, load_prompts, read_jsonl, write_jsonl, write_provenance
    from .models import load_policy

    out = Path(args.out) if args.out else DATA_DIR / "evaluation"
    adapters = Path(args.adapters) if args.adapters else DATA_DIR / "adapters"
    responses_file = out / "responses.jsonl"
    start = time.perf_counter()
    model = tokenizer = None
    if args.regenerate or not responses_file.exists():
        wanted = tuple(args.methods.split(",")) if args.methods else E.METHODS + E.EXTRA_METHODS
        unknown = [m for m in wanted if m not in E.METHOD_SPEC]
        if unknown:
            raise ValueError(f"Unknown methods {unknown}; choose from {', '.join(E.METHOD_SPEC)}.")
        methods = E.available_methods(adapters, [m for m in wanted if m != E.BASELINE])
        missing = [m for m in wanted if m not in methods and m != E.BASELINE]
        if missing:
            print(f"note: no adapters for {missing} in {adapters}; evaluating {methods} only "
                  f"(train them with `make artifacts`).", file=sys.stderr)
        prompts = load_prompts("eval", limit=args.limit if args.limit is not None else pick(4, None))
        model, tokenizer = load_policy()
        rows = E.generate_responses(model, tokenizer, adapters, prompts, methods=methods,
                                    max_new_tokens=args.max_new_tokens, seed=args.seed, batch_size=args.batch_size)
        write_jsonl(responses_file, rows)
        write_provenance(responses_file, command="rlphf-lab " + " ".join(sys.argv[1:]), seed=args.seed,
                         wall_time_s=time.perf_counter() - start, prompts=len(prompts), methods=methods,
                         max_new_tokens=args.max_new_tokens, device=str(model.device), adapters=str(adapters))
        print(f"{len(rows)} answers in {responses_file}")
        if args.generate_only:
            return 0
    rows = read_jsonl(responses_file)
    summary = E.summarize(rows, seed=args.seed)
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
    (out / "win_rates.md").write_text(report)
    write_provenance(out / "win_rates.csv", command="rlphf-lab " + " ".join(sys.argv[1:]), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, responses=str(responses_file),
                     ai_judge=summary.get("ai_judge"))
    print(report)
    return 0


def _cmd_train_rewards(args) -> int:
    import time

    from .data import DATA_DIR, load_pairs, read_jsonl, write_provenance
    from .preferences import SIDES, get_preference
    from .rewards import train as T

    from .feedback.annotators import GENERAL

    sides = [s if s == GENERAL else get_preference(s).code for s in (args.sides.split(",") if args.sides else SIDES)]
    out_root = Path(args.out) if args.out else DATA_DIR / "reward_models"
    candidates = read_jsonl(DATA_DIR / "candidates.jsonl")
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
    write_provenance(record, command="rlphf-lab " + " ".join(sys.argv[1:]), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, accuracy=rows,
                     train_pairs=args.train_pairs, eval_pairs=args.eval_pairs)
    for r in rows:
        print(f"{r['side']} [{r['backend']}] train acc {r['train_accuracy']:.3f}  eval acc {r['eval_accuracy']:.3f}  "
              f"({r['n_train']} train / {r['n_eval']} eval pairs, {r['seconds']} s)")
    print(f"accuracy table: {csv_path}")
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

    p = sub.add_parser("train-rewards", help="train one Bradley-Terry reward model per preference side")
    p.add_argument("--backend", choices=["features", "trl"], default="features",
                   help="features: frozen backbone + small head (seconds); trl: RewardTrainer + LoRA (slow on CPU)")
    p.add_argument("--sides", default=None, help="comma-separated side codes (default: all six), or 'general'")
    p.add_argument("--train-pairs", default="pairs_train", help="shipped pair set or path (default pairs_train)")
    p.add_argument("--eval-pairs", default="pairs_eval", help="shipped pair set or path (default pairs_eval)")
    p.add_argument("--epochs", type=int, default=300, help="features back end: full-batch epochs")
    p.add_argument("--max-steps", type=int, default=None, help="trl back end: optimizer steps (default one epoch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output root (default data/reward_models)")
    p.set_defaults(func=_cmd_train_rewards)

    p = sub.add_parser("train-sft", help="multitask SFT baseline: LoRA fine-tuning on every combination's preferred responses")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=None, help="stop after n optimizer steps (quick mode: 2)")
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default runs/policies/multitask)")
    p.set_defaults(func=_cmd_train_sft)

    p = sub.add_parser("evaluate", help="win rates of every method against the vanilla model over the 8 combinations")
    p.add_argument("--adapters", default=None, help="folder of trained adapters (default data/adapters)")
    p.add_argument("--out", default=None, help="output folder (default data/evaluation)")
    p.add_argument("--limit", type=int, default=None, help="first n eval prompts (quick mode: 4)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--regenerate", action="store_true", help="sample new answers even if OUT/responses.jsonl exists")
    p.add_argument("--generate-only", action="store_true", help="write responses.jsonl and stop (e.g. on a GPU)")
    p.add_argument("--methods", default=None, help="comma-separated subset, e.g. P2A,P2B (default: all; vanilla always)")
    p.add_argument("--ai-judge", type=int, default=0, metavar="N", help="also ask the AI judge on N sampled comparisons")
    p.add_argument("--reward-scores", action="store_true",
                   help="also score every answer with the shipped reward models (reward hacking or no learning?)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("generate-candidates", help="sample one response per prompt and preference prompt (resumable)")
    p.add_argument("--split", default=None, choices=["train", "eval"], help="default: both")
    p.add_argument("--limit", type=int, default=None, help="first n prompts only (quick mode: 4)")
    p.add_argument("--train-per-category", type=int, default=None,
                   help="all eval prompts + the first n train prompts of each category (default: all prompts)")
    p.add_argument("--out", default=None, help="JSONL file (default data/candidates.jsonl)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=56)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.set_defaults(func=_cmd_generate_candidates)

    p = sub.add_parser("label-pairs", help="label candidate pairs with the simulated annotators (all six sides)")
    p.add_argument("--split", default="train", choices=["train", "eval"])
    p.add_argument("--pairs-per-prompt", type=int, default=None, help="per side and prompt, 1..21 (default: train 16, eval 10)")
    p.add_argument("--seed", type=int, default=None, help="default: train 0, eval 1")
    p.add_argument("--temperature", type=float, default=None,
                   help="Bradley-Terry label noise (default: train 0.1, eval 0 = the annotator's own ranking)")
    p.add_argument("--tie-margin", type=float, default=0.25)
    p.add_argument("--sides", default=None, help="comma-separated, default all six; 'general' for the RLHF baseline's rater")
    p.add_argument("--candidates", default=None, help="default data/candidates.jsonl")
    p.add_argument("--out", default=None, help="default data/feedback/pairs_<split>.jsonl")
    p.set_defaults(func=_cmd_label_pairs)

    p = sub.add_parser("label-raters", help="a population of simulated raters labels random pairs (for RFM)")
    p.add_argument("--disagreement", default="low", help="low (0.25), high (1.5) or a number")
    p.add_argument("--n-raters", type=int, default=None, help="default 60 (quick: 5)")
    p.add_argument("--pairs-per-rater", type=int, default=None, help="default 120 (quick: 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.3)
    p.add_argument("--candidates", default=None, help="default data/candidates.jsonl")
    p.add_argument("--out", default=None, help="default data/feedback/raters_<disagreement>.jsonl")
    p.set_defaults(func=_cmd_label_raters)

    p = sub.add_parser("judge-agreement", help="how often the local model as judge agrees with the annotators")
    p.add_argument("--n", type=int, default=None, help="pairs per side (default 50, quick: 2)")
    p.add_argument("--pairs", default="pairs_eval", help="shipped set name or path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", default=None, help="default data/feedback/judge_agreement.json")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.set_defaults(func=_cmd_judge_agreement)
    p = sub.add_parser("train-policy", help="PPO with LoRA: one preference side, Prompted-MORL, MORLAIF or RLHF")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--preference", help="Personalized Soups: one side's policy, e.g. P2A")
    which.add_argument("--prompted-morl", action="store_true", help="one policy, random preference prompts")
    which.add_argument("--morlaif", metavar="SIDES", help="several rewards scalarized, e.g. P1A,P2A,P3A")
    which.add_argument("--rlhf", action="store_true", help="baseline: one 'generally better' reward")
    p.add_argument("--scalarizer", default=None, help="MORLAIF / Prompted-MORL scalarizer (default weighted_linear)")
    p.add_argument("--weights", type=float, nargs="+", default=None, help="MORLAIF weights, one per side")
    p.add_argument("--reward", default="rm", choices=["rm", "toy-length"],
                   help="rm: trained reward models; toy-length: a word-count toy for demos")
    p.add_argument("--iterations", type=int, default=None, help="PPO iterations (quick mode: 2)")
    p.add_argument("--batch-size", type=int, default=None, help="rollouts per iteration (quick mode: 4)")
    p.add_argument("--mini-batch-size", type=int, default=4)
    p.add_argument("--ppo-epochs", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=None, help="quick mode: 16, else 64")
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--init-kl-coef", type=float, default=0.2)
    p.add_argument("--target-kl", type=float, default=6.0, help="KL per answer (nats) the adaptive controller aims at")
    p.add_argument("--kl-horizon", type=int, default=None,
                   help="adaptive KL horizon in samples (default: fitted to the run, iterations x batch / 10)")
    p.add_argument("--missing-eos-penalty", type=float, default=1.0,
                   help="subtracted from the normalised score of an answer cut off before EOS (TRL's RLOO/GRPO)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="held-out reward-model and annotator scores on dev prompts every N iterations (0: off)")
    p.add_argument("--eval-prompts", type=int, default=16, help="how many dev prompts the held-out metrics use")
    p.add_argument("--limit", type=int, default=None, help="train on the first n prompts only")
    p.add_argument("--out", default=None, help="output folder (default runs/policies/REWARD/NAME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=10, help="checkpoint every N iterations")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--dtype", default=None)
    p.set_defaults(func=_cmd_train_policy)
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
