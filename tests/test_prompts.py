from collections import Counter

import pytest

from rlphf_lab.data import load_prompts


def test_ids_unique_stable_and_split():
    rows = load_prompts()
    assert len(rows) >= 400
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("p") and i[1:].isdigit() for i in ids)
    splits = Counter(r["split"] for r in rows)
    assert set(splits) == {"train", "eval"} and splits["eval"] >= 60
    assert len(load_prompts("train")) + len(load_prompts("eval")) == len(rows)


def test_no_duplicate_instructions():
    norm = lambda s: "".join(ch for ch in s.lower() if ch.isalnum())
    texts = [norm(r["instruction"]) for r in load_prompts()]
    assert len(set(texts)) == len(texts)


def test_many_categories_each_in_both_splits():
    rows = load_prompts()
    cats = {r["category"] for r in rows}
    assert len(cats) >= 8
    for c in cats:
        assert {r["split"] for r in rows if r["category"] == c} == {"train", "eval"}


@pytest.mark.model
def test_prompts_leave_room_for_a_128_token_answer(policy):
    from rlphf_lab.models import format_chat
    from rlphf_lab.preferences import combinations

    _, tok = policy
    longest = max(combinations(), key=len)
    worst = max(len(tok(format_chat(tok, r["instruction"], longest))["input_ids"]) for r in load_prompts())
    assert worst + 128 <= 512, f"longest prompt is {worst} tokens"


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown split 'test'"):
        load_prompts("test")
