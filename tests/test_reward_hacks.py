"""The shipped reward models rank every hack-suite answer below the normal answer it was made from.

The hacks are built from *eval-split* answers (prompts the reward models never trained on) with a
seed the training pairs never used (1), so the test asks whether the reward models learned what a
degenerate answer is, not whether they remember the training hack rows."""
import pytest

from rlphf_lab.config import pick
from rlphf_lab.feedback import annotators as A
from rlphf_lab.feedback import hacks as H

pytestmark = pytest.mark.model
SIDES = (*A.SIDES, A.GENERAL)


def _eval_answers(n_prompts):
    """The plain ("none" style) eval-split answer of the first n_prompts prompts, where unpenalised."""
    from rlphf_lab.data import CANDIDATES_FILE, read_jsonl

    if not CANDIDATES_FILE.exists():
        pytest.skip("no shipped candidate pool (data/candidates.jsonl)")
    rows = sorted((r for r in read_jsonl(CANDIDATES_FILE) if r["split"] == "eval" and r["style"] == "none"),
                  key=lambda r: r["prompt_id"])
    rows = [r for r in rows if A.degeneracy_penalty(A.raw_signals(r["response"], r["instruction"])) == 0]
    return rows[:n_prompts]


# Not met yet (README, "Reward models"): 41 of 1,848 comparisons misranked in full mode, mostly P2A against
# off-topic and truncated answers. Strict: the test fails as soon as the reward models rank every hack below.
@pytest.mark.xfail(strict=True, reason="the shipped reward models still rank some off-topic and truncated "
                   "hacks above the normal answer (README, Reward models)")
def test_shipped_reward_models_rank_every_hack_below_the_normal_answer(policy, one_thread):
    from rlphf_lab.rewards import load_reward_scorer

    backbone, tokenizer = policy
    scorer = load_reward_scorer(sides=list(SIDES), backbone=backbone, tokenizer=tokenizer)
    rows = _eval_answers(pick(4, 24))
    assert rows, "no unpenalised eval-split answers in the candidate pool"
    instructions, responses, labels = [], [], []
    for row in rows:
        instructions.append(row["instruction"])
        responses.append(row["response"])
        labels.append((row["prompt_id"], "normal"))
        for hack in H.hack_answers(row["instruction"], row["response"], H.hack_seed(1, row["id"])):
            instructions.append(row["instruction"])
            responses.append(hack["text"])
            labels.append((row["prompt_id"], hack["kind"]))
    scores = scorer(list(SIDES), instructions, responses)           # (n, sides)
    normal = {pid: i for i, (pid, kind) in enumerate(labels) if kind == "normal"}
    failures = []
    for i, (pid, kind) in enumerate(labels):
        if kind == "normal":
            continue
        for k, side in enumerate(SIDES):
            if scores[i, k] >= scores[normal[pid], k]:
                failures.append(f"{side} {pid} {kind}: hack {scores[i, k]:.2f} >= normal "
                                f"{scores[normal[pid], k]:.2f}: {responses[i][:60]!r}")
    n = (len(labels) - len(rows)) * len(SIDES)
    assert not failures, f"{len(failures)} of {n} hack comparisons misranked:\n" + "\n".join(failures)
