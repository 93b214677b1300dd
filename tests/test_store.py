"""The append-only feedback store and the conversion to TRL's preference format."""
import json

import pytest

from rlphf_lab.data import FeedbackStore, to_preference_dataset


def rec(i, **kw):
    return {"pair_id": f"pair-{i}", "prompt_id": f"p{i}", "split": "train", "instruction": f"Question {i}?",
            "preference": "P2A", "rater": "student", "label": "A", "chosen": f"short {i}",
            "rejected": f"a much longer answer {i}", "chosen_id": f"p{i}-P2A", "rejected_id": f"p{i}-P2B", **kw}


def test_append_writes_one_line_per_record(tmp_path):
    store = FeedbackStore(tmp_path / "labels.jsonl")
    assert store.records() == [] and store.labelled_ids() == set()
    for i in range(3):
        store.append(rec(i))
    lines = (tmp_path / "labels.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[1]) == rec(1)
    assert store.records() == [rec(0), rec(1), rec(2)]
    assert store.labelled_ids() == {"pair-0", "pair-1", "pair-2"}


def test_truncated_last_line_is_reported_and_skipped_never_rewritten(tmp_path):
    path = tmp_path / "labels.jsonl"
    store = FeedbackStore(path)
    store.append(rec(0))
    store.append(rec(1))
    # a crash mid-write: the third record is cut off half way, with no newline
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec(2))[:25])
    before = path.read_bytes()

    with pytest.warns(UserWarning, match="line 3"):
        rows = store.records()
    assert rows == [rec(0), rec(1)]                       # nothing earlier is lost
    assert [n for n, _ in store.problems] == [3]
    assert path.read_bytes() == before                    # reading never changes the file

    # the next click still lands on a line of its own; the broken line stays where it was
    store.append(rec(3))
    after = path.read_bytes()
    assert after.startswith(before)
    with pytest.warns(UserWarning, match="line 3"):
        assert store.records() == [rec(0), rec(1), rec(3)]
    assert len(after.decode().splitlines()) == 4


def test_corrupt_line_in_the_middle(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(rec(0)) + "\n{not json\n[1, 2]\n" + json.dumps(rec(1)) + "\n")
    store = FeedbackStore(path)
    with pytest.warns(UserWarning):
        assert store.records() == [rec(0), rec(1)]
    assert [n for n, _ in store.problems] == [2, 3]
    with pytest.warns(UserWarning):
        assert store.labelled_ids("student") == {"pair-0", "pair-1"}
    with pytest.warns(UserWarning):
        assert store.labelled_ids("someone-else") == set()


def test_preference_dataset_is_trl_conversational_format(tmp_path):
    records = [rec(0), rec(1, rater="rater-001"), rec(2, preference="P3A"),
               rec(3, label="tie", chosen=None, rejected=None), rec(4, label="skip", chosen=None, rejected=None)]
    ds = to_preference_dataset(records)
    assert len(ds) == 3                                    # tie and skip dropped
    row = ds[0]
    assert row["prompt"] == [{"role": "user", "content": "Question 0?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "short 0"}]
    assert row["rejected"] == [{"role": "assistant", "content": "a much longer answer 0"}]
    assert {"pair_id", "preference", "rater", "chosen_id", "rejected_id"} <= set(ds.column_names)
    assert len(to_preference_dataset(records, preference="P2A")) == 2
    assert to_preference_dataset(records, rater="rater-001")["pair_id"] == ["pair-1"]
    # a store (or its path) converts the same way
    store = FeedbackStore(tmp_path / "s.jsonl")
    for r in records:
        store.append(r)
    assert to_preference_dataset(store)["pair_id"] == ds["pair_id"]
    assert to_preference_dataset(tmp_path / "s.jsonl")["pair_id"] == ds["pair_id"]
    with pytest.raises(ValueError, match="preference"):
        to_preference_dataset(records, preference="P1B")
