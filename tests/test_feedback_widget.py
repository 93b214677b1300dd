"""FeedbackWidget: clicks (through Button.click()) append the right records; reopening resumes."""
import pytest

from rlphf_lab.data import FeedbackStore
from rlphf_lab.feedback.clicks import is_swapped, pending_pairs, record_choice, shown_responses
from rlphf_lab.widgets import FeedbackWidget


def make_pairs(n=5, side="P2A"):
    return [{"pair_id": f"eval-{side}-p{i:04d}-0", "prompt_id": f"p{i:04d}", "split": "eval",
             "instruction": f"Question {i}?", "preference": side, "rater": "annotator", "label": "A",
             "chosen": f"good answer {i}", "rejected": f"bad answer {i}",
             "chosen_id": f"p{i:04d}-{side}", "rejected_id": f"p{i:04d}-none",
             "score_chosen": 1.0, "score_rejected": -1.0} for i in range(n)]


def test_record_choice_maps_the_shown_order_back_to_candidates():
    pairs = make_pairs(40)
    swapped = [p for p in pairs if is_swapped(p["pair_id"], seed=0)]
    straight = [p for p in pairs if not is_swapped(p["pair_id"], seed=0)]
    assert swapped and straight                            # both orders occur
    for p in swapped:
        (id_a, _), (id_b, _) = shown_responses(p, seed=0)
        assert (id_a, id_b) == (p["rejected_id"], p["chosen_id"])
        r = record_choice(p, "A", seed=0)                  # A on screen is the annotator's rejected one
        assert (r["chosen_id"], r["rejected_id"], r["chosen"]) == (p["rejected_id"], p["chosen_id"], p["rejected"])
    p = straight[0]
    r = record_choice(p, "B", rater="ana", seed=0)
    assert (r["chosen_id"], r["rater"], r["label"], r["preference"]) == (p["rejected_id"], "ana", "B", "P2A")
    tie = record_choice(p, "tie", seed=0)
    assert tie["chosen"] is None and tie["label"] == "tie"
    with pytest.raises(ValueError, match="choice"):
        record_choice(p, "C")


def test_clicks_append_records_at_once(tmp_path):
    pairs = make_pairs(4)
    path = tmp_path / "labels.jsonl"
    w = FeedbackWidget(pairs, path, preference="P2A", rater="student", seed=0)
    assert "0 / 4" in w.progress.value
    first = w.current
    w.buttons["A"].click()
    rows = FeedbackStore(path).records()                   # on disk right after the click
    assert len(rows) == 1
    expected = record_choice(first, "A", preference="P2A", rater="student", seed=0)
    assert {k: v for k, v in rows[0].items() if k != "time"} == {k: v for k, v in expected.items() if k != "time"}
    w.buttons["B"].click()
    w.buttons["tie"].click()
    w.buttons["skip"].click()
    rows = FeedbackStore(path).records()
    assert [r["label"] for r in rows] == ["A", "B", "tie", "skip"]
    assert [r["pair_id"] for r in rows] == [p["pair_id"] for p in pairs]
    assert "4 / 4" in w.progress.value and w.current is None
    assert all(b.disabled for b in w.buttons.values())
    w.buttons["A"].click()                                  # nothing left: no extra record
    assert len(FeedbackStore(path).records()) == 4


def test_reopening_resumes_where_the_student_stopped(tmp_path):
    pairs = make_pairs(5)
    path = tmp_path / "labels.jsonl"
    w = FeedbackWidget(pairs, path, preference="P2A")
    w.buttons["A"].click()
    w.buttons["skip"].click()
    del w                                                   # "kernel crash"
    w2 = FeedbackWidget(pairs, path, preference="P2A")
    assert w2.current["pair_id"] == pairs[2]["pair_id"]
    assert "2 / 5" in w2.progress.value
    assert len(pending_pairs(pairs, FeedbackStore(path), "P2A")) == 3
    # another rater starts from the beginning on the same file
    assert FeedbackWidget(pairs, path, preference="P2A", rater="bob").current["pair_id"] == pairs[0]["pair_id"]


def test_widget_keeps_only_the_preference_it_judges(tmp_path):
    pairs = make_pairs(3, "P2A") + make_pairs(2, "P3B")
    w = FeedbackWidget(pairs, tmp_path / "l.jsonl", preference="P3B")
    assert w.total == 2 and w.current["preference"] == "P3B"
    assert "unfriendly" in w.view.value


def test_overall_mode_asks_for_your_own_taste():
    from rlphf_lab.feedback.clicks import pair_preference
    from rlphf_lab.widgets import pair_html

    pair = {"pair_id": "x-1", "instruction": "Say hi.", "chosen": "Hi!", "rejected": "Go away.",
            "chosen_id": "a", "rejected_id": "b"}
    assert pair_preference(pair, None) is None
    assert "Which answer do you prefer?" in pair_html(pair)
    assert "P3A" in pair_html(pair, preference="P3A")
