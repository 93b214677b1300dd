"""The hack suite: degenerate answers built from real train-split candidates score clearly below the
normal answer they came from, on every side; the suite is deterministic; hack rows pair with the pool."""
import collections

import pytest

from rlphf_lab.config import pick
from rlphf_lab.feedback import annotators as A
from rlphf_lab.feedback import hacks as H
from rlphf_lab.feedback import pairs as P

SIDES = (*A.SIDES, A.GENERAL)
MARGIN = 1.0            # one standard deviation of a dimension score

INSTRUCTION = "Why is the sky blue during the day?"
ANSWER = ("Sunlight is made of every colour. When it passes through the air, tiny nitrogen and oxygen molecules "
          "scatter short blue wavelengths much more strongly than long red ones, so blue light reaches our eyes "
          "from every direction of the sky. At midday the light crosses little air, and the sky looks blue.")


def _train_candidates():
    from rlphf_lab.data import CANDIDATES_FILE, read_jsonl

    if not CANDIDATES_FILE.exists():
        pytest.skip("no shipped candidate pool (data/candidates.jsonl)")
    rows = [r for r in read_jsonl(CANDIDATES_FILE) if r["split"] == "train" and not H.is_hack(r)]
    if not rows:
        pytest.skip("the candidate pool has no train-split candidates")
    return rows


def _all_scores(text, instruction):
    signals = A.raw_signals(text, instruction)
    return A.side_scores(A._dims_from_signals(signals), A.degeneracy_penalty(signals))


@pytest.fixture(scope="module")
def sources():
    """A fixed set of real train-split answers (every style) that the annotators do not penalise."""
    rows = _train_candidates()
    prompts = sorted({r["prompt_id"] for r in rows})[:pick(30, None)]
    chosen = [r for r in rows if r["prompt_id"] in set(prompts)]
    return [r for r in sorted(chosen, key=lambda r: r["id"])
            if A.degeneracy_penalty(A.raw_signals(r["response"], r["instruction"])) == 0]


def test_every_hack_scores_clearly_below_the_normal_answer_on_every_side(sources):
    assert len(sources) > 100
    worst = collections.defaultdict(lambda: float("inf"))
    failures = []
    for row in sources:
        normal = _all_scores(row["response"], row["instruction"])
        for hack in H.hack_answers(row["instruction"], row["response"], H.hack_seed(0, row["id"])):
            scores = _all_scores(hack["text"], row["instruction"])
            for side in SIDES:
                margin = normal[side] - scores[side]
                worst[hack["kind"], side] = min(worst[hack["kind"], side], margin)
                if margin < MARGIN:
                    failures.append((row["id"], hack["kind"], side, round(margin, 2), hack["text"][:80]))
    table = "\n".join(f"{kind:18s} " + " ".join(f"{side}:{worst[kind, side]:.2f}" for side in SIDES)
                      for kind in H.HACK_KINDS)
    print(f"\nmin margin (normal - hack) over {len(sources)} train answers:\n{table}")
    assert not failures, failures[:10]


def test_hack_rows_from_the_pool_score_below_their_source(sources):
    rows = _train_candidates()
    keep = {r["prompt_id"] for r in sources}
    pool = [r for r in rows if r["prompt_id"] in keep]
    hack_rows = H.hack_candidates(pool, seed=0)
    by_id = {r["id"]: r for r in pool}
    assert len(hack_rows) == len(H.HACK_KINDS) * len({r["prompt_id"] for r in pool if r["style"] == "none"})
    for h in hack_rows:
        src = by_id[h["source_id"]]
        if A.degeneracy_penalty(A.raw_signals(src["response"], src["instruction"])) > 0:
            continue                       # a degenerate source: nothing to be worse than
        normal, bad = _all_scores(src["response"], src["instruction"]), _all_scores(h["response"], h["instruction"])
        assert all(normal[s] - bad[s] >= MARGIN for s in SIDES), (h["id"], h["response"][:80])
    # the off-topic hack is another prompt's answer that shares no topic word with this instruction
    for h in hack_rows:
        if h["style"] == "hack:off_topic":
            assert A.topic_overlap(h["instruction"], h["response"]) == 0.0


def test_hack_answers_are_deterministic_and_cover_every_kind():
    a = H.hack_answers(INSTRUCTION, ANSWER, seed=3)
    assert a == H.hack_answers(INSTRUCTION, ANSWER, seed=3)
    assert [h["kind"] for h in a] == list(H.HACK_KINDS)
    assert a != H.hack_answers(INSTRUCTION, ANSWER, seed=4)
    texts = {h["kind"]: h["text"] for h in a}
    assert texts["pasted_twice"].count(ANSWER) == 2
    assert sorted(texts["shuffled"].split()) == sorted(ANSWER.split())
    assert ANSWER.startswith(texts["truncated"]) and texts["truncated"][-1].isalpha()
    assert not ANSWER[len(texts["truncated"])].isspace()                         # cut inside a word
    assert len(A.words(texts["rare_words"])) == 10
    assert INSTRUCTION in texts["prompt_echo"]
    assert A.topic_overlap(INSTRUCTION, texts["off_topic"]) == 0.0
    # a subset of kinds gives the same texts, and a given off-topic answer is used as it is
    sub = H.hack_answers(INSTRUCTION, ANSWER, seed=3, kinds=("truncated", "dont_know"), off_topic="Jazz is fun.")
    assert sub == [{"kind": "truncated", "text": texts["truncated"]}, {"kind": "dont_know", "text": texts["dont_know"]}]
    assert H.hack_answers(INSTRUCTION, ANSWER, seed=3, off_topic="Jazz is fun.")[8]["text"] == "Jazz is fun."
    with pytest.raises(ValueError, match="kinds"):
        H.hack_answers(INSTRUCTION, ANSWER, kinds=("nonsense",))
    with pytest.raises(ValueError, match="non-empty"):
        H.hack_answers(INSTRUCTION, "  ")


def _toy_pool(n_prompts=4):
    topics = ["rain", "snow", "wind", "hail", "fog", "frost"]
    rows = []
    for i in range(n_prompts):
        topic = topics[i]
        for j, style in enumerate(P.STYLE_ORDER):
            text = (f"{topic.capitalize()} forms when air cools and its water changes state. Answer {j} adds that "
                    f"{topic} depends on temperature, pressure and the humidity of the air near the ground.")
            rows.append({"id": f"p{i:04d}-{style}", "prompt_id": f"p{i:04d}", "split": "train",
                         "category": ["science", "cooking"][i % 2], "instruction": f"How does {topic} form?",
                         "style": style, "response": text})
    return rows


def test_hack_candidates_rows_are_deterministic_and_replace_nothing():
    pool = _toy_pool()
    rows = H.hack_candidates(pool, seed=0)
    assert rows == H.hack_candidates(pool, seed=0)
    assert rows == H.hack_candidates(pool + rows, seed=0)              # existing hack rows are ignored
    assert len(rows) == 4 * len(H.HACK_KINDS)
    assert {r["style"] for r in rows} == {"hack:" + k for k in H.HACK_KINDS}
    assert all(r["id"] == f"{r['prompt_id']}-hack-{r['style'][5:]}" for r in rows)
    assert all(set(r) >= {"id", "prompt_id", "split", "category", "instruction", "style", "response"} for r in rows)
    assert H.hack_candidates(pool, seed=0, split="eval") == []
    assert H.hack_candidates(pool, seed=1) != rows


def test_pairs_add_normal_vs_hack_pairs_without_changing_the_normal_ones():
    pool = _toy_pool()
    with_hacks = pool + H.hack_candidates(pool, seed=0)
    for side in SIDES:
        plain = P.make_preference_pairs(pool, side, pairs_per_prompt=5, seed=0, tie_margin=0.0, keep_ties=True)
        both = P.make_preference_pairs(with_hacks, side, pairs_per_prompt=5, seed=0, tie_margin=0.0, keep_ties=True)
        normal = [p for p in both if "-hack" not in p["pair_id"]]
        hacked = [p for p in both if "-hack" in p["pair_id"]]
        assert normal == plain
        assert len(hacked) == 4 * P.HACK_PAIRS_PER_PROMPT
        assert all("-hack-" in p["rejected_id"] and "-hack-" not in p["chosen_id"] for p in hacked)
        if side in A.SIDES:                                   # the side's own style meets a hack first
            assert all(p["chosen_id"].endswith(side) for p in hacked if p["pair_id"].endswith("hack0"))
        summary = P.label_summary(both)[side]
        assert summary["hack_pairs"] == len(hacked) and summary["hack_rejected"] == 1.0
    none = P.make_preference_pairs(with_hacks, "P2A", pairs_per_prompt=5, seed=0, hack_pairs_per_prompt=0)
    assert none == P.make_preference_pairs(pool, "P2A", pairs_per_prompt=5, seed=0)


def test_add_hacks_command_appends_hack_rows_and_is_idempotent(tmp_path, capsys):
    import json

    from rlphf_lab.cli import main
    from rlphf_lab.data import read_jsonl, write_jsonl

    src = tmp_path / "candidates.jsonl"
    pool = _toy_pool(3)
    pool[0]["response"] += " Odd\u2028line"            # a U+2028 inside a string must survive the copy
    write_jsonl(src, pool)
    (tmp_path / "candidates.jsonl.provenance.json").write_text(json.dumps({"command": "rlphf-lab generate-candidates",
                                                                          "max_new_tokens": 128}))
    out = tmp_path / "with_hacks.jsonl"
    assert main(["add-hacks", "--candidates", str(src), "--out", str(out), "--seed", "0"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith(src.read_text(encoding="utf-8"))           # normal rows byte for byte, first
    rows = read_jsonl(out)
    assert len(rows) == len(pool) + 3 * len(H.HACK_KINDS) and rows[len(pool):] == H.hack_candidates(pool, seed=0)
    record = json.loads((tmp_path / "with_hacks.jsonl.provenance.json").read_text())
    assert record["rows"] == len(rows) and record["hack_rows"] == 3 * len(H.HACK_KINDS)
    assert record["command"].startswith("rlphf-lab add-hacks") and record["max_new_tokens"] == 128
    assert record["source_provenance"]["command"] == "rlphf-lab generate-candidates"
    # a finished file is not replaced without --overwrite; with it, running on its own output changes nothing
    assert main(["add-hacks", "--candidates", str(src), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["add-hacks", "--candidates", str(out), "--out", str(out), "--overwrite"]) == 0
    assert out.read_text(encoding="utf-8") == text
    assert json.loads((tmp_path / "with_hacks.jsonl.provenance.json").read_text())["source_provenance"] == \
        record["source_provenance"]
    assert main(["add-hacks", "--candidates", str(src), "--out", str(tmp_path / "e.jsonl"), "--split", "eval"]) == 2
