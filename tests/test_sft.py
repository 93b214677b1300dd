"""The multitask SFT data: each combination's preferred candidate, with its preference prompt."""
import pytest

from rlphf_lab.feedback import annotators
from rlphf_lab.preferences import combinations, preference_prompt
from rlphf_lab.rl.sft import multitask_examples

SHORT = "Photosynthesis: plants make sugar from light. Cool, right?"   # names its topic (the off-topic check)
LONG = ("Photosynthesis converts light energy into chemical energy: chlorophyll absorbs photons, water is "
        "split, oxygen is released, and the Calvin cycle fixes carbon dioxide into glucose, which the plant "
        "stores as starch or burns for energy in its mitochondria during cellular respiration.")


def candidates(split="train"):
    return [{"id": f"p0-{s}", "prompt_id": "p0", "split": split, "instruction": "What is photosynthesis?",
             "style": s, "response": r} for s, r in (("P2A", SHORT), ("P2B", LONG))]


def test_each_combination_gets_its_best_candidate_and_prompt():
    rows = multitask_examples(candidates())
    assert len(rows) == len(combinations())
    for row in rows:
        sides = row["combination"].split("+")
        best = max((SHORT, LONG), key=lambda t: sum(annotators.score(s, t) for s in sides))
        assert row["completion"][0]["content"] == best
        assert row["prompt"][0]["content"].endswith(preference_prompt(row["combination"]))
    picked = {r["combination"]: r["style"] for r in rows}
    assert picked["P1A+P2A+P3A"] == "P2A" and picked["P1B+P2B+P3B"] == "P2B"


def test_no_candidates_of_the_split_is_a_clear_error():
    with pytest.raises(ValueError, match="generate-candidates"):
        multitask_examples(candidates(split="eval"))
