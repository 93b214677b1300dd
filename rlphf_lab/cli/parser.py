"""`rlphf-lab`'s argument parser: every command, its options, their types and defaults."""
from __future__ import annotations

import argparse
import sys

from .feedback_commands import (_cmd_add_hacks, _cmd_fetch_model, _cmd_generate, _cmd_generate_candidates,
                                _cmd_judge_agreement, _cmd_label_pairs, _cmd_label_raters)
from .options import COUNT, COUNT0, RATE, SEED, Parser, disagreement, real, share_or_natural, whole
from .training_commands import _cmd_evaluate, _cmd_train_dpo, _cmd_train_policy, _cmd_train_rewards, _cmd_train_sft


def build_parser() -> argparse.ArgumentParser:
    # --debug works before or after the command name (SUPPRESS: a subcommand does not reset it)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error (also RLPHF_DEBUG=1)")
    parser = Parser(prog="rlphf-lab", description=sys.modules[__package__].__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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

    p = command("train-dpo", _cmd_train_dpo,
                "one side's LoRA adapter by DPO on its labelled pairs (TRL's DPOTrainer; no reward model, no sampling)")
    p.add_argument("--preference", required=True, help="the side, e.g. P1A")
    p.add_argument("--train-pairs", default="pairs_train", help="shipped pair set or path (default pairs_train)")
    p.add_argument("--eval-pairs", default="pairs_eval", help="held-out pairs for accuracy and margin (default pairs_eval)")
    p.add_argument("--max-pairs", type=COUNT, default=None, help="train on a seeded subset of n pairs (quick mode: 8; default 256)")
    p.add_argument("--eval-pairs-n", type=COUNT, default=None, help="held-out pairs scored before and after (quick mode: 8; default 32)")
    p.add_argument("--min-gap", type=real(0.0), default=1.0,
                   help="keep pairs whose annotator scores differ by at least this (clearer preferences first)")
    p.add_argument("--hack-share", type=share_or_natural, default=0.1,
                   help="at most this share (0-1) of the pairs reject a hack answer, the rest contrast the side "
                        "itself; 'natural': the pairs' own mix (about half)")
    p.add_argument("--above-base", action="store_true",
                   help="keep only pairs whose chosen answer beats the base model's own plain answer on this side")
    p.add_argument("--max-steps", type=COUNT, default=None, help="stop after n optimizer steps (quick mode: 2; default one epoch)")
    p.add_argument("--batch-size", type=COUNT, default=8)
    p.add_argument("--learning-rate", type=RATE, default=1e-3)
    p.add_argument("--beta", type=RATE, default=0.1, help="how strongly the adapter is held near the base model")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    p.add_argument("--candidates", default=None, help="default data/candidates.jsonl")
    p.add_argument("--out", default=None, help="output folder (default runs/policies/dpo-SIDE; shipped: data/adapters/dpo-SIDE)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    overwrite(p)

    p = command("evaluate", _cmd_evaluate, "win rates of every method against the vanilla model over the 8 combinations")
    p.add_argument("--adapters", default=None, help="folder of trained adapters (default data/adapters)")
    p.add_argument("--out", default=None, help="output folder (default runs/evaluate; the shipped one: data/evaluation)")
    p.add_argument("--limit", type=COUNT, default=None, help="first n eval prompts (quick mode: 4)")
    p.add_argument("--max-new-tokens", type=COUNT, default=128)
    p.add_argument("--batch-size", type=COUNT, default=16)
    p.add_argument("--regenerate", action="store_true", help="sample new answers even if OUT/responses.jsonl exists")
    p.add_argument("--generate-only", action="store_true", help="write responses.jsonl and stop (e.g. on a GPU)")
    p.add_argument("--add", action="store_true",
                   help="answer only --methods and add them to OUT/responses.jsonl (the other answers are kept)")
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
    p.add_argument("--kl-target", "--target-kl", dest="kl_target", type=RATE, default=6.0,
                   help="KL per answer (nats) the adaptive controller aims at (PPOConfig.target; --target-kl: old name)")
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
