"""Four ways to train a policy, each one a reward for the same PPO trainer.

    personalized_soups("P2A", score_fn)   one adapter per preference side, rewarded by that side alone
    prompted_morl(score_fn)               one adapter; every prompt carries a random combination's
                                          preference prompt; reward = mean of that combination's sides
    morlaif(["P1A", "P2A"], score_fn, scalarizer="worst_case")   several rewards -> one scalar
    rlhf(score_fn)                        one "generally better" reward (the RLHF baseline)

Each returns an Objective: a reward function (batch, K), the scalarizer, and for Prompted-MORL a
query_fn that attaches the preference prompt. Pass it on with

    PPOTrainer(PPOConfig(reward_weights=obj.reward_weights), model, tok, prompts, **obj.trainer_kwargs())

score_fn(side_codes, instructions, responses) -> (batch, len(side_codes)) is the reward-model
scorer from rlphf_lab.rewards, or `toy_length_score_fn` for demos and tests. It always gets the
plain instruction AND the response: the reference Prompted-MORL code scored the prompt alone, so
its reward could not see what the policy wrote.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch

from ..feedback.annotators import GENERAL  # the code of the single "generally better" rater and reward model (RLHF)
from ..preferences import SIDES, apply_preference, combinations, get_preference, parse_combination
from ..rewards.scalarize import weighted_linear
from ..scoring import Scorer
from .rollout import Query, QueryFn, RewardFn, Scalarizer

# score_fn(side_codes, instructions, responses) -> (batch, len(side_codes)): the lab's one scorer protocol
ScoreFn = Scorer



@dataclass
class Objective:
    """What one policy is trained for: a reward function and how to make it one number."""
    name: str                                  # "P2A", "prompted-morl", "morlaif-P1A+P2A", "rlhf"
    reward_fn: RewardFn                        # (instructions, responses) -> (batch, K)
    reward_names: list[str]                    # the K column names, for the metrics
    scalarizer: Scalarizer = weighted_linear     # (batch, K), (K,) -> (batch,)
    reward_weights: list[float] | None = None  # (K,) for PPOConfig.reward_weights; None: ones
    query_fn: QueryFn | None = None            # Prompted-MORL: adds a random preference prompt

    def trainer_kwargs(self) -> dict:
        """The keyword arguments PPOTrainer takes from an objective."""
        return {"reward_fn": self.reward_fn, "reward_names": self.reward_names,
                "scalarizer": self.scalarizer, "query_fn": self.query_fn}


def get_scalarizer(name: str | Scalarizer) -> Scalarizer:
    """A scalarizer by name (the keys of rlphf_lab.rewards.SCALARIZERS), or a callable as it is."""
    if callable(name):
        return name
    from ..rewards.scalarize import SCALARIZERS

    if name not in SCALARIZERS:
        raise ValueError(f"Unknown scalarizer {name!r}; choose one of {', '.join(SCALARIZERS)}.")
    return SCALARIZERS[name]


def _columns(score_fn: ScoreFn, codes: list[str]) -> RewardFn:
    """reward_fn for fixed reward columns: (instructions, responses) -> (batch, len(codes))."""
    def reward_fn(instructions: list[str], responses: list[str]) -> torch.Tensor:
        return score_fn(codes, instructions, responses)
    return reward_fn


def personalized_soups(side: str, score_fn: ScoreFn) -> Objective:
    """Personalized Soups: the policy for one preference side, rewarded by that side's model only.
    The policy sees the plain instruction (as in the paper's training code)."""
    code = get_preference(side).code
    return Objective(name=code, reward_fn=_columns(score_fn, [code]), reward_names=[code])


def prompted_morl(score_fn: ScoreFn, combos: Sequence[str] | None = None,
                  scalarizer: str | Scalarizer = "weighted_linear") -> Objective:
    """Prompted-MORL: one policy for all combinations. Each prompt gets a random combination; the
    policy sees instruction + that combination's preference prompt; the reward is the combination's
    side rewards (1/n each, so weighted_linear gives their mean), scored on the plain instruction."""
    combos = [parse_combination(c) for c in (combos or combinations())]
    names = list(SIDES)
    for combo in combos:
        for p in combo:
            if p.code not in names:
                raise ValueError(f"{p.code} is not one of the six sides {', '.join(SIDES)}; Prompted-MORL here uses those.")

    def query_fn(instruction: str, generator: torch.Generator) -> Query:
        combo = combos[int(torch.randint(len(combos), (1,), generator=generator))]
        codes = [p.code for p in combo]
        # w_side = 1/n for the combination's n sides, 0 for the others      (K = 6)
        weights = tuple(1.0 / len(codes) if s in codes else 0.0 for s in names)
        return Query(prompt=apply_preference(instruction, combo), instruction=instruction, weights=weights,
                     tag="+".join(codes))

    return Objective(name="prompted-morl", reward_fn=_columns(score_fn, names), reward_names=names,
                     scalarizer=get_scalarizer(scalarizer), query_fn=query_fn)


def morlaif(codes: Sequence[str] | str, score_fn: ScoreFn, scalarizer: str | Scalarizer = "weighted_linear",
            weights: Sequence[float] | None = None) -> Objective:
    """MORLAIF: one policy on a scalarization of several reward models' scores (codes like "P1A,P2A,P3A")."""
    if isinstance(codes, str):
        codes = [c for c in re.split(r"[,+ ]+", codes) if c]
    codes = list(codes)
    if len(codes) < 2:
        raise ValueError(f"MORLAIF combines several rewards; got {codes}. Give two or more codes, e.g. 'P1A,P2A,P3A'.")
    if weights is not None and len(weights) != len(codes):
        raise ValueError(f"{len(weights)} weights for {len(codes)} rewards ({', '.join(codes)}); give one weight per reward.")
    name = scalarizer if isinstance(scalarizer, str) else getattr(scalarizer, "__name__", "custom")
    return Objective(name=f"morlaif-{'+'.join(codes)}-{name}", reward_fn=_columns(score_fn, codes),
                     reward_names=codes, scalarizer=get_scalarizer(scalarizer),
                     reward_weights=list(weights) if weights is not None else None)


def rlhf(score_fn: ScoreFn, code: str = GENERAL) -> Objective:
    """The RLHF baseline: one policy, one reward model of what is 'generally better'."""
    return Objective(name="rlhf", reward_fn=_columns(score_fn, [code]), reward_names=[code])


# --------------------------------------------------------------------------------------------
# A toy reward from word counts, for demos and tests (no model, microseconds)
# --------------------------------------------------------------------------------------------

def objective_for(score_fn: ScoreFn, *, preference: str | None = None, prompted: bool = False,
                  morlaif_sides: Sequence[str] | str | None = None, weights: Sequence[float] | None = None,
                  scalarizer: str | Scalarizer | None = None) -> Objective:
    """The objective `rlphf-lab train-policy` trains: one side (Personalized Soups), Prompted-MORL
    (`prompted`), MORLAIF over `morlaif_sides` (with `weights`), or else the RLHF baseline."""
    scalarizer = "weighted_linear" if scalarizer is None else scalarizer
    if weights is not None and not morlaif_sides:
        raise ValueError("--weights are MORLAIF's weights, one per side of --morlaif; leave them out otherwise.")
    if preference:
        return personalized_soups(preference, score_fn)
    if prompted:
        return prompted_morl(score_fn, scalarizer=scalarizer)
    if morlaif_sides:
        if weights is not None and not any(w > 0 for w in weights):
            raise ValueError(f"--weights {' '.join(f'{w:g}' for w in weights)}: give at least one weight > 0.")
        return morlaif(morlaif_sides, score_fn, scalarizer=scalarizer, weights=weights)
    return rlhf(score_fn)


_WORD = re.compile(r"[A-Za-z']+")


def toy_length_score_fn(side_codes: Sequence[str], instructions: list[str], responses: list[str]) -> torch.Tensor:
    """A stand-in for reward models, built from word counts of the response only:

        P2A concise      -words / 50          P2B informative   +words / 50
        P1A elementary   -(mean word length - 5)   P1B knowledgeable  +(mean word length - 5)
        P3A friendly     ("!" + "you") per 10 words  P3B unfriendly   minus that
        general          -|words - 40| / 40   (about 40 words is "best")

    Trivially hackable on purpose: a policy trained on P2A learns to answer in a few words.
    Returns (batch, len(side_codes)).
    """
    if len(instructions) != len(responses):
        raise ValueError(f"{len(instructions)} instructions but {len(responses)} responses; give one instruction per response.")
    rows = []
    for response in responses:
        words = _WORD.findall(response)
        n = len(words)
        mean_len = sum(map(len, words)) / n if n else 0.0
        friendly = (response.count("!") + sum(w.lower() == "you" for w in words)) * 10 / max(n, 10)
        feature = {"P2A": -n / 50, "P2B": n / 50, "P1A": -(mean_len - 5), "P1B": mean_len - 5,
                   "P3A": friendly, "P3B": -friendly, GENERAL: -abs(n - 40) / 40}
        row = []
        for code in side_codes:
            if code not in feature:
                raise ValueError(f"toy_length_score_fn has no reward for {code!r}; it knows {', '.join(feature)}.")
            row.append(feature[code])
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32).reshape(len(responses), len(side_codes))


def annotator_score_fn(side_codes: Sequence[str], instructions: list[str], responses: list[str]) -> torch.Tensor:
    """The simulated annotators (feedback.annotators.scorer) as a scorer: (batch, len(side_codes)).

    PPO optimises the reward models; the annotators that labelled their training pairs are the
    held-out "gold" judge (PPOTrainer's judge_fn): a gain the annotators do not confirm is a gain
    in the reward model's errors.
    """
    from ..feedback import annotators

    return annotators.scorer(side_codes, instructions, responses).float()


def judge_fn(objective: Objective, score_fn: ScoreFn = annotator_score_fn) -> RewardFn:
    """A held-out judge with the objective's reward columns (same weights, same scalarizer)."""
    return _columns(score_fn, objective.reward_names)


def load_score_fn(kind: str = "rm") -> ScoreFn:
    """The scorer for `train-policy --reward KIND`: "toy-length" or "rm" (trained reward models)."""
    if kind == "toy-length":
        return toy_length_score_fn
    if kind == "rm":
        from ..rewards import load_reward_scorer

        return load_reward_scorer()
    raise ValueError(f"Unknown reward {kind!r}; use 'rm' (trained reward models) or 'toy-length' (a word-count toy).")
