"""soups.learned: which loaded adapters barely learned their side, and the SoupWidget's warning."""
import csv

from rlphf_lab import soups
from tiny_models import three_soup_adapters, tiny_llama


def write_table(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "win_rates_by_side.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["method", "P1A", "P1B", "P2A"])
        w.writeheader()
        w.writerows(rows)


def test_load_adapters_records_where_each_adapter_came_from(tmp_path):
    dirs = three_soup_adapters(tmp_path / "adapters")
    model = soups.load_adapters(tiny_llama(), dirs)
    assert model.adapter_sources == {name: str(path) for name, path in dirs.items()}


def test_own_side_win_rates_come_from_the_run_folders_evaluation_row(tmp_path):
    write_table(tmp_path / "eval", [{"method": "P1A", "P1A": 0.55, "P1B": 0.4, "P2A": 0.6},
                                    {"method": "dpo-P1B", "P1A": 0.3, "P1B": 0.91, "P2A": 0.5}])

    shipped = tmp_path / "adapters"

    class Model:             # only what own_side_win_rates reads
        adapter_sources = {"P1A": str(shipped / "P1A" / "adapter"), "P1B": str(shipped / "dpo-P1B" / "adapter"),
                           "P2A": str(tmp_path / "mine" / "P2A" / "adapter")}

    rates = soups.own_side_win_rates(Model(), tmp_path / "eval", shipped)
    assert rates == {"P1A": 0.55, "P1B": 0.91}                 # P2A is not a shipped folder: no claim
    assert soups.weak_adapters(rates) == {"P1A": 0.55}
    html = soups.weak_adapters_html(rates)
    assert "P1A (0.55)" in html and "P1B" not in html
    assert soups.weak_adapters_html({"P1B": 0.91}) == ""
    assert soups.own_side_win_rates(Model(), tmp_path / "nothing here") == {}
