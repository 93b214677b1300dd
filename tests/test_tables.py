"""Tables of dict rows: means per group, CSV round trips, markdown."""
from rlphf_lab import tables


def test_group_means_first_seen_order_and_counts():
    rows = [{"label": "b", "x": 1.0, "y": 2}, {"label": "a", "x": 3.0, "y": 4}, {"label": "b", "x": 2.0, "y": 0}]
    assert tables.group_means(rows) == [{"label": "b", "n": 2, "x": 1.5, "y": 1.0},
                                        {"label": "a", "n": 1, "x": 3.0, "y": 4.0}]
    assert tables.group_means(rows, columns=["y"]) == [{"label": "b", "n": 2, "y": 1.0}, {"label": "a", "n": 1, "y": 4.0}]


def test_group_means_skips_booleans_and_strings():
    rows = [{"label": "a", "ok": True, "text": "hi", "x": 1}]
    assert tables.group_means(rows) == [{"label": "a", "n": 1, "x": 1.0}]


def test_csv_round_trip_and_append(tmp_path):
    rows = [{"method": "soup", "win": 0.5}, {"method": "vanilla", "win": 0.25}]
    assert tables.read_csv(tables.write_csv(tmp_path / "t.csv", rows)) == rows
    path = tmp_path / "m.csv"
    tables.append_csv_row(path, {"iteration": 1, "kl": "0.5"})
    tables.append_csv_row(path, {"iteration": 2, "kl": "0.25"})
    assert path.read_text().splitlines() == ["iteration,kl", "1,0.5", "2,0.25"]


def test_markdown_table():
    md = tables.markdown_table([{"method": "soup", "average": 0.61234}], digits=2)
    assert md.splitlines() == ["| method | average |", "|---|---|", "| soup | 0.61 |"]
    assert tables.markdown_table([]) == ""


def test_append_csv_row_keeps_every_value_under_its_own_column(tmp_path):
    """A row with its keys in another order, or with a new column, must not shift values."""
    path = tmp_path / "m.csv"
    tables.append_csv_row(path, {"iteration": 1, "kl": "0.5"})
    tables.append_csv_row(path, {"kl": "0.25", "iteration": 2})                 # another key order
    tables.append_csv_row(path, {"iteration": 3, "kl": "0.1", "loss": "2"})     # a new column widens the file
    assert path.read_text().splitlines() == ["iteration,kl,loss", "1,0.5,", "2,0.25,", "3,0.1,2"]
