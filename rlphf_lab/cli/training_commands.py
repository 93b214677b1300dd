"""The commands that train and evaluate: reward models, PPO policies, the SFT baseline, the evaluation.

    rlphf-lab train-rewards | train-policy | train-sft | train-dpo | evaluate

Each only calls the library (the options were checked by cli/parser.py and cli/options.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..config import ADAPTERS_DIR
from .options import (candidates_file, command_line, default_out, or_default, output_dir, resume_command_line,
                      side_codes, sized)


def _cmd_train_rewards(args) -> int:
    import time

    from ..data import load_pairs, read_jsonl, write_provenance
    from ..preferences import SIDES
    from ..rewards import train as T

    sides = side_codes(args.sides)
    out_root = output_dir(or_default(args.out, default_out("train-rewards")), args.overwrite,
                          [f"{args.backend}/{side}" for side in sides])
    candidates = read_jsonl(candidates_file(args))
    train_pairs, eval_pairs = load_pairs(args.train_pairs), load_pairs(args.eval_pairs)
    start = time.perf_counter()
    if args.backend == "features":
        from ..models import load_policy

        model, tokenizer = load_policy()
        rows = T.train_feature_reward_models(model, tokenizer, candidates, train_pairs, eval_pairs, sides,
                                             out_root=out_root, seed=args.seed, epochs=args.epochs)
        from ..rewards.reward_model import load_reward_model

        # the hack suite on eval-split answers: how many hacks each new model scores at or above the normal answer
        trained = {side: load_reward_model(out_root / "features" / side) for side in sides}
        hacks = T.hack_ranking_rows(model, tokenizer, trained, candidates)
        hack_csv = T.update_hack_ranking_csv(out_root / "hack_ranking.csv", hacks)
        for side in sides:
            n = [h for h in hacks if h["side"] == side]
            print(f"{side}: {sum(h['misranked'] for h in n)} of {sum(h['comparisons'] for h in n)} hack answers "
                  f"scored at or above the normal answer")
        print(f"hack ranking: {hack_csv}")
    else:
        rows = T.train_trl_reward_models(candidates, train_pairs, eval_pairs, sides, out_root=out_root,
                                         max_steps=args.max_steps, seed=args.seed)
    csv_path = T.update_accuracy_csv(out_root / "accuracy.csv", rows)
    # all six sides: <backend>.provenance.json; a subset: <backend>/<sides>.provenance.json beside their folders
    record = out_root / args.backend if sides == list(SIDES) else out_root / args.backend / "+".join(sides)
    write_provenance(record, command=command_line(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, accuracy=rows,
                     train_pairs=args.train_pairs, eval_pairs=args.eval_pairs)
    for r in rows:
        print(f"{r['side']} [{r['backend']}] train acc {r['train_accuracy']:.3f}  eval acc {r['eval_accuracy']:.3f}  "
              f"({r['n_train']} train / {r['n_eval']} eval pairs, {r['seconds']} s)")
    print(f"accuracy table: {csv_path}")
    return 0


def _cmd_train_policy(args) -> int:
    from ..data import load_prompts, split_dev
    from ..models import load_policy
    from ..rl import PPOConfig, PPOTrainer, latest_checkpoint, multi
    from ..rl.policy import make_accelerator
    from ..rl.run_folder import check_fresh_start, checkpoint_folders

    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other: --resume continues the run in --out, "
                         "--overwrite replaces it with a new one.")

    def build_objective(score_fn):
        return multi.objective_for(score_fn, preference=args.preference, prompted=args.prompted_morl,
                                   morlaif_sides=args.morlaif, weights=args.weights, scalarizer=args.scalarizer)

    checked = build_objective(multi.toy_length_score_fn)      # bad codes, scalarizer, weights: before any model loads
    batch = sized(args.batch_size, 4, 16)
    if args.mini_batch_size is not None and args.mini_batch_size > batch:
        raise ValueError(f"--mini-batch-size {args.mini_batch_size} is larger than the batch ({batch} rollouts); "
                         f"use a divisor of --batch-size.")
    out = output_dir(or_default(args.out, default_out("policies", f"{args.reward}/{checked.name}")))
    config = PPOConfig(output_dir=str(out), iterations=sized(args.iterations, 2, 60), batch_size=batch,
                       mini_batch_size=or_default(args.mini_batch_size, min(4, batch)),
                       ppo_epochs=args.ppo_epochs, max_new_tokens=sized(args.max_new_tokens, 16, 64),
                       learning_rate=args.learning_rate, init_kl_coef=args.init_kl_coef, seed=args.seed,
                       save_every=args.save_every, reward_weights=checked.reward_weights,
                       missing_eos_penalty=args.missing_eos_penalty, target=args.kl_target,
                       horizon=args.kl_horizon, eval_every=args.eval_every)
    if not (args.resume and checkpoint_folders(out)):     # a resume with a checkpoint is checked by the trainer
        check_fresh_start(out, overwrite=args.overwrite, resume=args.resume)
    score_fn = multi.load_score_fn(args.reward)
    objective = build_objective(score_fn)
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
        history = trainer.train(resume=args.resume, command=command_line(args), overwrite=args.overwrite)
    except KeyboardInterrupt:
        last = latest_checkpoint(out)
        if last is None:
            where = f"before the first checkpoint (--save-every {args.save_every}); nothing to resume: rerun"
        else:
            where = f"the last checkpoint is {last}; continue with"
        print(f"interrupted: {where} `{resume_command_line(args) if last else command_line(args)}`", file=sys.stderr)
        return 130
    if accelerator.is_main_process and history:
        first, last = history[0], history[-1]
        print(f"{objective.name}: reward {first['reward/score']:.3f} -> {last['reward/score']:.3f}, "
              f"KL {last['kl/response']:.2f}, length {first['response/length']:.0f} -> {last['response/length']:.0f} tokens; "
              f"adapter in {config.output_dir}/adapter")
    return 0


def _cmd_train_sft(args) -> int:
    from ..config import pick
    from ..data import read_jsonl
    from ..rl.sft import train_multitask_sft

    out = output_dir(or_default(args.out, default_out("policies", "multitask")), args.overwrite, ["adapter"])
    candidates = read_jsonl(candidates_file(args))
    summary = train_multitask_sft(candidates, out, epochs=args.epochs, batch_size=args.batch_size,
                                  max_steps=args.max_steps if args.max_steps is not None else pick(2, -1),
                                  learning_rate=args.learning_rate, seed=args.seed, command=command_line(args))
    print(f"multitask SFT: {summary['examples']} examples, {summary['steps']} steps, loss {summary['loss']:.3f}, "
          f"{summary['wall_time_s']} s; adapter in {out / 'adapter'}")
    return 0


def _cmd_train_dpo(args) -> int:
    from ..config import pick
    from ..data import load_pairs, load_prompts, read_jsonl, split_dev
    from ..preferences import get_preference
    from ..rl.dpo import check_dpo_out, train_dpo_side

    side = get_preference(args.preference).code           # a bad code fails before any model loads
    out = output_dir(or_default(args.out, default_out("policies", f"dpo-{side}")))
    check_dpo_out(out, overwrite=args.overwrite, resume=args.resume)
    candidates = read_jsonl(candidates_file(args))
    summary = train_dpo_side(candidates, load_pairs(args.train_pairs, candidates), load_pairs(args.eval_pairs, candidates),
                             side, out, max_pairs=sized(args.max_pairs, 8, 256), eval_pairs_n=sized(args.eval_pairs_n, 8, 32),
                             max_steps=args.max_steps if args.max_steps is not None else pick(2, -1),
                             batch_size=args.batch_size, learning_rate=args.learning_rate, beta=args.beta,
                             min_gap=args.min_gap, hack_share=args.hack_share, above_base=args.above_base,
                             # never the dev prompts, on which recipes are compared (as for PPO)
                             exclude_prompts=[p["id"] for p in split_dev(load_prompts("train"))[1]], seed=args.seed, resume=args.resume, device=args.device,
                             command=command_line(args))
    print(f"DPO {side}: {summary['pairs']} pairs, {summary['steps']} steps, {summary['wall_time_s']} s; held-out "
          f"accuracy {summary['eval_accuracy_before']:.2f} -> {summary['eval_accuracy']:.2f}, margin "
          f"{summary['eval_margin_before']:.3f} -> {summary['eval_margin']:.3f}; adapter in {out / 'adapter'}")
    return 0


EVALUATION_FILES = ("verdicts.jsonl", "win_rates.csv", "win_rates_by_side.csv", "mean_scores.csv",
                    "soup_vs_others.csv", "dpo_soup_vs_others.csv", "win_rates.md", "win_rates.csv.provenance.json")


def _add_methods(args, out: Path, adapters: Path, responses_file: Path) -> int:
    """`evaluate --add --methods dpo-soup`: answer the eval prompts with the named methods only, keep every
    other method's answers (and the vanilla ones they are judged against), then rebuild every table."""
    import json
    import time

    from .. import evaluate as E
    from ..data import load_prompts, read_jsonl, write_jsonl, write_provenance
    from ..models import load_policy

    if not responses_file.exists():
        raise FileNotFoundError(f"--add adds methods to an evaluation, and {responses_file} does not exist; "
                                f"run `rlphf-lab evaluate --out {out}` first (or leave out --add).")
    if args.methods is None or args.regenerate:
        raise ValueError("--add needs --methods (the methods to answer now) and excludes --regenerate.")
    methods, missing = E.choose_methods(args.methods.split(","), adapters)
    if missing:
        raise ValueError(f"No adapters for {missing} in {adapters}; train them first (`make artifacts`).")
    old = read_jsonl(responses_file)
    provenance_file = responses_file.with_name(responses_file.name + ".provenance.json")
    earlier = json.loads(provenance_file.read_text()) if provenance_file.exists() else None
    runs = (earlier or {}).get("runs", [earlier] if earlier else [])
    first = runs[0] if runs else {}
    for option, value in (("seed", args.seed), ("max_new_tokens", args.max_new_tokens)):
        if first.get(option, value) != value:
            raise ValueError(f"{responses_file} was sampled with {option} {first[option]}; add methods with the "
                             f"same --{option.replace('_', '-')} {first[option]} so that they are comparable.")
    ids = {r["prompt_id"] for r in old if r["method"] == E.BASELINE}
    prompts = [p for p in load_prompts("eval") if p["id"] in ids]
    start = time.perf_counter()
    model, tokenizer = load_policy()
    new = E.generate_responses(model, tokenizer, adapters, prompts, methods=methods, baseline=False,
                               max_new_tokens=args.max_new_tokens, seed=args.seed, batch_size=args.batch_size)
    rows = [r for r in old if r["method"] not in methods] + new
    write_jsonl(responses_file, rows)
    run = {"command": command_line(args), "methods": methods, "prompts": len(prompts), "device": str(model.device),
           "wall_time_s": round(time.perf_counter() - start, 1), "adapters": str(adapters)}
    write_provenance(responses_file, command=command_line(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, max_new_tokens=args.max_new_tokens,
                     note=f"{', '.join(methods)} added to the answers of the earlier runs (kept as they were)",
                     runs=[*runs, run])
    print(f"{len(new)} answers of {methods} added to {responses_file} ({len(rows)} in all); tables rebuilt")
    args.add, args.overwrite = False, True        # the tables are rebuilt from every answer
    return _cmd_evaluate(args)


def _cmd_evaluate(args) -> int:
    import time

    from .. import evaluate as E
    from ..data import load_prompts, read_jsonl, write_jsonl, write_provenance, write_text_atomic
    from ..models import load_policy

    out = Path(or_default(args.out, default_out("evaluate")))
    adapters = Path(or_default(args.adapters, ADAPTERS_DIR))
    if not adapters.is_dir():
        raise FileNotFoundError(f"--adapters {adapters}: no such folder; pass the folder that holds <method>/adapter "
                                f"(the shipped ones are in {ADAPTERS_DIR}).")
    responses_file = out / "responses.jsonl"
    if args.add:
        return _add_methods(args, out, adapters, responses_file)
    generating = args.regenerate or not responses_file.exists()
    results = ((["responses.jsonl", "responses.jsonl.provenance.json"] if generating else [])
               + ([] if args.generate_only else [*EVALUATION_FILES, *(["reward_scores.csv"] if args.reward_scores else []),
                                                *(["ai_judge.jsonl"] if args.ai_judge else [])]))
    output_dir(out, args.overwrite, results)
    start = time.perf_counter()
    model = tokenizer = None
    if generating:
        methods, missing = E.choose_methods(args.methods.split(",") if args.methods else None, adapters)
        if missing:
            print(f"note: no adapters for {missing} in {adapters}; evaluating {methods} only "
                  f"(train them with `make artifacts`).", file=sys.stderr)
        prompts = load_prompts("eval", limit=sized(args.limit, 4, None))
        model, tokenizer = load_policy()
        rows = E.generate_responses(model, tokenizer, adapters, prompts, methods=methods,
                                    max_new_tokens=args.max_new_tokens, seed=args.seed, batch_size=args.batch_size)
        write_jsonl(responses_file, rows)
        write_provenance(responses_file, command=command_line(args), seed=args.seed,
                         wall_time_s=time.perf_counter() - start, prompts=len(prompts), methods=methods,
                         max_new_tokens=args.max_new_tokens, device=str(model.device), adapters=str(adapters))
        print(f"{len(rows)} answers in {responses_file}")
        if args.generate_only:
            return 0
    rows = read_jsonl(responses_file)
    summary = E.evaluation_tables(rows, seed=args.seed)
    write_jsonl(out / "verdicts.jsonl", summary["verdicts"])
    if args.reward_scores:
        from ..rewards import load_reward_scorer

        summary["reward_scores"] = E.mean_reward_scores(rows, load_reward_scorer())
    for name in ("win_rates", "win_rates_by_side", "mean_scores", "soup_vs_others", "dpo_soup_vs_others", "reward_scores"):
        if name in summary:
            E.write_csv(out / f"{name}.csv", summary[name])
    if not generating and not args.reward_scores and (out / "reward_scores.csv").exists():
        # the same answers (or more, after --add): the earlier run's reward-model scores still hold; keep them
        summary["reward_scores"] = E.read_csv(out / "reward_scores.csv")
    if not generating and not args.ai_judge and (out / "ai_judge.jsonl").exists():
        summary["ai_judge"] = E.agreement(read_jsonl(out / "ai_judge.jsonl"))      # kept from the earlier run
    if args.ai_judge:
        if model is None:
            model, tokenizer = load_policy()
        ai_rows = E.ai_judge_verdicts(model, tokenizer, rows, summary["verdicts"], n=args.ai_judge, seed=args.seed)
        write_jsonl(out / "ai_judge.jsonl", ai_rows)
        summary["ai_judge"] = E.agreement(ai_rows)
    report = E.report_markdown(summary)
    write_text_atomic(out / "win_rates.md", report)
    write_provenance(out / "win_rates.csv", command=command_line(args), seed=args.seed,
                     wall_time_s=time.perf_counter() - start, responses=str(responses_file),
                     ai_judge=summary.get("ai_judge"))
    print(report)
    return 0
