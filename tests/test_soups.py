"""Personalized Soups on a tiny random Llama: the exact soup, the A/B average's cross terms, merges, errors."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from rlphf_lab import soups
from tiny_models import BAD_SOUP_WEIGHTS, three_soup_adapters, tiny_llama, tiny_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")

CODES = ["P1A", "P1B", "P2A"]
ALPHA = 32


@pytest.fixture(scope="module")
def adapter_dirs(tmp_path_factory):
    return three_soup_adapters(tmp_path_factory.mktemp("adapters"), lora_alpha=ALPHA)


@pytest.fixture
def soup(adapter_dirs):
    return soups.load_adapters(tiny_llama(), adapter_dirs)


def factors_from_files(adapter_dirs):
    """{code: {module: (A, B, s)}} read straight from the saved safetensors: independent of the library."""
    out = {}
    for code, folder in adapter_dirs.items():
        cfg = json.loads((folder / "adapter_config.json").read_text())
        tensors = load_file(folder / "adapter_model.safetensors")
        scale = cfg["lora_alpha"] / cfg["r"]
        out[code] = {key.removeprefix("base_model.model.").removesuffix(".lora_A.weight"):
                     (tensors[key].float(), tensors[key.replace("lora_A", "lora_B")].float(), scale)
                     for key in tensors if "lora_A" in key}
    return out


def merged_base(deltas):
    """A fresh base model with W + delta written into its weights by hand."""
    model = tiny_llama()
    with torch.no_grad():
        for module, delta in deltas.items():
            model.get_submodule(module).weight += delta
    return model


def logits(model, ids=torch.tensor([[5, 17, 99, 3, 250, 42]])):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_exact_soup_equals_weighted_sum_of_deltas(soup, adapter_dirs):
    w = {"P1A": 0.2, "P1B": 0.5, "P2A": 0.3}
    applied = soups.set_soup_weights(soup, w)
    assert applied == pytest.approx(w)
    files = factors_from_files(adapter_dirs)
    by_hand = {m: sum(w[c] * files[c][m][2] * files[c][m][1] @ files[c][m][0] for c in CODES) for m in files["P1A"]}
    # the library's per-layer delta ...
    deltas = soups.exact_delta(soup, w)
    assert set(deltas) == set(by_hand) and len(by_hand) == 4       # 2 layers x (q_proj, v_proj)
    for m in by_hand:
        torch.testing.assert_close(deltas[m], by_hand[m])
    # ... and what the live soup computes: same logits as W + sum_i w_i s_i B_i A_i written by hand
    torch.testing.assert_close(logits(soup), logits(merged_base(by_hand)), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(logits(soup), logits(tiny_llama()), atol=1e-3)   # the deltas are not zero


def test_normalize_flag(soup):
    assert soups.set_soup_weights(soup, {"P1A": 2, "P1B": 6}) == {"P1A": 0.25, "P1B": 0.75, "P2A": 0.0}
    assert soups.set_soup_weights(soup, {"P1A": 2, "P1B": 6}, normalize=False) == {"P1A": 2, "P1B": 6, "P2A": 0.0}
    doubled = soups.exact_delta(soup, {"P1B": 2.0}, normalize=False)
    single = soups.exact_delta(soup, {"P1B": 1.0})
    for m in single:
        torch.testing.assert_close(doubled[m], 2 * single[m])


@pytest.mark.parametrize("code", CODES)
def test_weight_one_reproduces_the_adapter_alone(soup, adapter_dirs, code):
    from peft import PeftModel

    alone = PeftModel.from_pretrained(tiny_llama(), str(adapter_dirs[code])).eval()
    soups.set_soup_weights(soup, {c: 0.0 for c in CODES} | {code: 1.0})
    assert soup.active_adapters == CODES                  # weight 0: active at scale 0, adds nothing
    torch.testing.assert_close(logits(soup), logits(alone), atol=1e-6, rtol=1e-5)
    soups.use_adapter(soup, code)
    assert soup.active_adapters == [code]                 # left out: switched off
    torch.testing.assert_close(logits(soup), logits(alone), atol=1e-6, rtol=1e-5)


def test_repeated_weight_changes_do_not_drift(soup):
    reference = logits(soups.set_soup_weights(soup, {"P1A": 1}) and soup)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        soups.set_soup_weights(soup, dict(zip(CODES, torch.rand(3, generator=gen).tolist())))
    soups.set_soup_weights(soup, {"P1A": 1})
    assert torch.equal(logits(soup), reference)
    for layer, name, base in soups.soup_state(soup).layers:
        assert layer.scaling[name] == (base if name == "P1A" else 0.0)


def test_soup_scales_are_the_weight_times_alpha_over_r_bit_for_bit(soup):
    """PEFT's set_scale writes (w * alpha) / r; the soup's scales are w * (alpha / r) to the last bit (r = 16, 8)."""
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        weights = dict(zip(CODES, torch.rand(3, generator=gen, dtype=torch.float64).tolist()))
        applied = soups.set_soup_weights(soup, weights)
        for layer, name, _ in soups.soup_state(soup).layers:
            assert layer.scaling[name] == applied[name] * (layer.lora_alpha[name] / layer.r[name])


def test_ab_average_differs_by_the_predicted_cross_terms(soup, adapter_dirs):
    w = {"P1A": 0.3, "P1B": 0.7}                          # same r = 16: the reference merge applies
    files = factors_from_files(adapter_dirs)
    exact, ab = soups.exact_delta(soup, w), soups.ab_average_delta(soup, w)
    for m in exact:
        (A1, B1, s), (A2, B2, _) = files["P1A"][m], files["P1B"][m]
        # (w1 B1 + w2 B2)(w1 A1 + w2 A2) - (w1 B1 A1 + w2 B2 A2), expanded by hand
        predicted = s * ((0.3**2 - 0.3) * B1 @ A1 + (0.7**2 - 0.7) * B2 @ A2 + 0.3 * 0.7 * (B1 @ A2 + B2 @ A1))
        torch.testing.assert_close(ab[m] - exact[m], predicted, atol=1e-6, rtol=1e-4)
        assert predicted.abs().max() > 1e-3               # and the gap is real
    gaps = soups.relative_gap(exact, ab)
    assert all(g > 0.05 for g in gaps.values())
    # the new adapter computes that delta live
    name = soups.average_ab_merge(soup, w)
    soups.use_adapter(soup, name)
    torch.testing.assert_close(logits(soup), logits(merged_base(ab)), atol=1e-5, rtol=1e-4)


def test_ab_average_needs_equal_ranks(soup):
    with pytest.raises(ValueError, match="same r, alpha and use_rslora"):
        soups.ab_average_delta(soup, {"P1A": 1, "P2A": 1})   # r = 16 vs r = 8


def test_logit_difference_reports_the_gap_and_restores_the_soup(soup):
    before = soups.set_soup_weights(soup, {"P1A": 0.5, "P2A": 0.5})
    reference = logits(soup)
    report = soups.logit_difference(soup, tiny_tokenizer(), ["Name a fruit.", "Hi"], {"P1A": 1, "P1B": 1})
    assert report["max_abs_logit_diff"] > report["mean_abs_logit_diff"] > 0
    assert 0 <= report["top1_agreement"] <= 1 and report["mean_kl"] > 0
    assert soups.adapter_names(soup) == CODES and soups.soup_weights(soup) == before
    assert torch.equal(logits(soup), reference)


def test_peft_cat_merge_is_exact(soup):
    w = {"P1A": 0.25, "P2A": 0.75}                        # cat works across ranks
    name = soups.peft_weighted_merge(soup, w, "cat")
    soups.use_adapter(soup, name)
    torch.testing.assert_close(logits(soup), logits(merged_base(soups.exact_delta(soup, w))), atol=1e-5, rtol=1e-4)


def test_peft_merge_refuses_or_renames_an_existing_name(soup):
    w = {"P1A": 1, "P1B": 1}
    first = soups.peft_weighted_merge(soup, w, "linear")
    second = soups.peft_weighted_merge(soup, {"P1A": 1}, "linear")
    assert (first, second) == ("linear", "linear_2")
    # PEFT itself would silently keep the old adapter under a reused name: we refuse
    with pytest.raises(ValueError, match="already exists"):
        soups.peft_weighted_merge(soup, w, "ties", name="linear", density=0.5)
    with pytest.raises(ValueError, match="already exists"):
        soups.average_ab_merge(soup, w, name="P1A")
    assert soups.adapter_names(soup) == CODES + ["linear", "linear_2"]


def test_peft_merge_needs_density_for_pruning_methods(soup):
    with pytest.raises(ValueError, match="density"):
        soups.peft_weighted_merge(soup, {"P1A": 1, "P1B": 1}, "dare_ties")
    name = soups.peft_weighted_merge(soup, {"P1A": 1, "P1B": 1}, "dare_ties", density=0.5, seed=3)
    assert name == "dare_ties"


@pytest.mark.parametrize("weights, message", BAD_SOUP_WEIGHTS)
def test_bad_weights_raise(soup, weights, message):
    with pytest.raises(ValueError, match=message):
        soups.set_soup_weights(soup, weights)


def _edit_config(folder, **changes):
    file = folder / "adapter_config.json"
    cfg = json.loads(file.read_text()) | changes
    file.write_text(json.dumps(cfg))


def test_incompatible_adapters_raise(tmp_path, adapter_dirs):
    odd = soups.random_lora_adapters(tiny_llama(), ["P3A"], tmp_path, target_modules=("q_proj", "k_proj"))
    with pytest.raises(ValueError, match=r"P1A and P3A target different modules"):
        soups.load_adapters(tiny_llama(), {"P1A": adapter_dirs["P1A"], **odd})
    other = soups.random_lora_adapters(tiny_llama(), ["P3B"], tmp_path)
    _edit_config(other["P3B"], base_model_name_or_path="/somewhere/Llama-2-7b-hf")
    same = soups.random_lora_adapters(tiny_llama(), ["P2B"], tmp_path)
    _edit_config(same["P2B"], base_model_name_or_path="/cache/SmolLM2-135M-Instruct")
    with pytest.raises(ValueError, match=r"different base models.*P3B: Llama-2-7b-hf"):
        soups.load_adapters(tiny_llama(), {**same, **other})
    with pytest.raises(ValueError, match="not a PEFT adapter folder"):
        soups.load_adapters(tiny_llama(), {"P1A": tmp_path / "missing"})


def test_reloading_a_name_raises(soup, adapter_dirs):
    with pytest.raises(ValueError, match="already loaded"):
        soups.load_adapters(soup, {"P1A": adapter_dirs["P1B"]})


def test_dimension_positions_map_to_side_weights():
    assert soups.dimension_weights_to_sides({"P1": 0.2, "P2": 0.9, "P3": 0.5}) == pytest.approx(
        {"P1A": 0.8, "P1B": 0.2, "P2A": 0.1, "P2B": 0.9, "P3A": 0.5, "P3B": 0.5})
    assert soups.dimension_weights_to_sides({"P2": 0}) == {"P2A": 1.0, "P2B": 0.0}
    with pytest.raises(ValueError, match="outside"):
        soups.dimension_weights_to_sides({"P2": 1.5})
    with pytest.raises(ValueError, match="outside"):
        soups.dimension_weights_to_sides({"P2": math.nan})
    with pytest.raises(ValueError, match="Unknown dimension"):
        soups.dimension_weights_to_sides({"P4": 0.5})


def test_combination_weights_and_nearest_combination():
    assert soups.combination_weights("P1A+P2B+P3A") == {"P1A": 1, "P2B": 1, "P3A": 1}
    sides = soups.dimension_weights_to_sides({"P1": 0.2, "P2": 0.9, "P3": 0.5})
    assert soups.nearest_combination(sides) == "P1A+P2B+P3A"      # a tie goes to side A
    assert soups.nearest_combination({"P2A": 0.0, "P2B": 0.4}) == "P2B"


def test_sweep_rows_walk_from_one_side_to_the_other(soup):
    tok = tiny_tokenizer()
    seen = []

    def scorer(sides, instructions, responses):          # the lab's scorer protocol (rlphf_lab.scoring)
        seen.append(dict(soups.soup_weights(soup)))        # once per point: all its answers at once
        table = [{"P1A": len(r) / 10, "P1B": 1.0} for r in responses]
        return torch.tensor([[row.get(s, 0.0) for s in sides] for row in table])

    rows = soups.sweep_weights(soup, tok, ["Hi", {"instruction": "Name a fruit."}], "P1A", "P1B", steps=3,
                               scorer=scorer, max_new_tokens=4)
    assert [r["t"] for r in rows] == [0, 0, 0.5, 0.5, 1, 1]
    assert seen[0]["P1A"] == 1 and seen[1] == pytest.approx({"P1A": 0.5, "P1B": 0.5, "P2A": 0}) and seen[2]["P1B"] == 1
    means = soups.group_means(rows)
    assert [m["label"] for m in means] == ["t=0.00", "t=0.50", "t=1.00"] and all(m["n"] == 2 for m in means)
    assert means[0]["P1B"] == 1.0


def test_pareto_plot_draws_the_sweep_and_reference_points():
    import matplotlib

    matplotlib.use("Agg")
    from rlphf_lab.plots import plot_pareto_front

    rows = [{"label": f"t={t}", "P2A": 1 - t + d, "P2B": t + d} for t in (0, 0.5, 1) for d in (0.0, 0.2)]
    reference = [{"label": "prompting P2B", "P2A": 0.1, "P2B": 0.7}]
    fig = plot_pareto_front(rows, "P2A", "P2B", reference=reference)
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == pytest.approx([1.1, 0.6, 0.1]) and list(line.get_ydata()) == pytest.approx([0.1, 0.6, 1.1])
    assert "concise" in fig.axes[0].get_xlabel() and len(fig.axes[0].lines) == 2


# ---- Pareto fronts, merge comparison, shipped adapters, the model lock ---------------------------

def test_pareto_optimal_marks_the_non_dominated_points():
    points = [(0, 1), (1, 0), (0.5, 0.5), (0.2, 0.2), (0.5, 0.5), (1, 0)]
    assert soups.pareto_optimal(points) == [True, True, True, False, True, True]   # ties both stay


def _length_scores(sides, instructions, responses):
    table = [{"P1A": -len(r) / 10, "P1B": len(r) / 10, "P2A": 1.0, "P2B": -1.0} for r in responses]
    return torch.tensor([[row.get(s, 0.0) for s in sides] for row in table])


def test_pareto_front_sweeps_and_adds_reference_points(soup):
    tok = tiny_tokenizer()
    front = soups.pareto_front(soup, tok, ["Hi", "Name a fruit."], "P1A", "P2A", steps=3,
                               scorer=_length_scores, max_new_tokens=4)
    assert (front["x"], front["y"]) == ("P1A", "P2A")
    labels = [p["label"] for p in front["points"]]
    assert labels == ["t=0.00", "t=0.50", "t=1.00", "adapter P1A", "adapter P2A", "prompting P1A",
                      "prompting P2A", "prompting P1A+P2A", "base model"]
    # the single adapters are the sweep's ends, relabelled (no extra generation)
    ends = [r["response"] for r in front["sweep"] if r["t"] == 0]
    assert [r["response"] for r in front["reference"] if r["label"] == "adapter P1A"] == ends
    assert all(isinstance(p["pareto"], bool) for p in front["points"]) and any(p["pareto"] for p in front["points"])
    # opposite sides: no joint prompt; a combination at one end needs x and y named
    labels = [p["label"] for p in soups.pareto_front(soup, tok, ["Hi"], "P1A", "P1B", steps=2,
                                                     scorer=_length_scores, max_new_tokens=2)["points"]]
    assert "prompting P1A" in labels and "prompting P1B" in labels and not any("+" in lab for lab in labels)
    with pytest.raises(ValueError, match="x=..., y=..."):
        soups.pareto_front(soup, tok, ["Hi"], "P1A+P2A", "P1B", steps=2, scorer=_length_scores)


def test_compare_merges_exact_row_is_exact_and_cleans_up(soup):
    tok = tiny_tokenizer()
    before = soups.set_soup_weights(soup, {"P1A": 0.5, "P2A": 0.5})
    reference = logits(soup)
    rows = soups.compare_merges(soup, tok, ["Hi", "Name a fruit."], {"P1A": 0.3, "P1B": 0.7},
                                methods=("exact", "ab_average", "cat", "linear", "ties"),
                                scorer=_length_scores, max_new_tokens=6)
    by = {r["method"]: r for r in rows}
    assert by["exact"]["delta_gap"] == 0 and by["exact"]["mean_kl"] == pytest.approx(0, abs=1e-6)
    assert by["exact"]["top1_agreement"] == 1.0
    assert by["cat"]["delta_gap"] < 1e-5                     # concatenating the ranks is exact
    assert by["ab_average"]["delta_gap"] > 0.05 and by["linear"]["delta_gap"] > 0.05   # cross terms
    assert by["ab_average"]["mean_kl"] > 0
    assert soups.adapter_names(soup) == CODES and soups.soup_weights(soup) == before
    assert torch.equal(logits(soup), reference)


def test_shipped_adapters_are_found_or_replaced_by_random_ones(tmp_path, adapter_dirs, capsys):
    import shutil

    assert soups.shipped_adapter_dirs(CODES, root=tmp_path) == {}
    model, tok, source = soups.load_soup(tiny_llama(), tiny_tokenizer(), CODES, root=tmp_path,
                                         fallback_dir=tmp_path / "random")
    assert source == "random" and soups.adapter_names(model) == CODES
    assert "RANDOM stand-in" in capsys.readouterr().out
    saved = tmp_path / "random" / "P1A" / "adapter_model.safetensors"
    stamp = saved.stat().st_mtime_ns
    again, _, _ = soups.load_soup(tiny_llama(), tiny_tokenizer(), CODES, root=tmp_path, fallback_dir=tmp_path / "random")
    assert saved.stat().st_mtime_ns == stamp                   # made once, then reused
    torch.testing.assert_close(logits(again), logits(model))
    for code in CODES:                                        # ship them: data/adapters/<name>/adapter
        shutil.copytree(adapter_dirs[code], tmp_path / "shipped" / code / "adapter")
    found = soups.shipped_adapter_dirs(CODES, root=tmp_path / "shipped")
    assert list(found) == CODES
    half = tmp_path / "half" / "P1A" / "adapter"               # a training run still writing it
    half.mkdir(parents=True)
    (half / "adapter_config.json").write_text("{}")
    assert soups.shipped_adapter_dirs(["P1A"], root=tmp_path / "half") == {}
    model, tok, source = soups.load_soup(tiny_llama(), tiny_tokenizer(), CODES, root=tmp_path / "shipped")
    assert source == "shipped" and "trained adapters" in capsys.readouterr().out
    soups.set_soup_weights(model, {"P1B": 1.0})
    alone = soups.load_adapters(tiny_llama(), {"P1B": adapter_dirs["P1B"]})
    torch.testing.assert_close(logits(model), logits(alone))
    shutil.copytree(adapter_dirs["P1B"], tmp_path / "some" / "P1B" / "adapter")   # only one trained so far
    mixed, _, source = soups.load_soup(tiny_llama(), tiny_tokenizer(), CODES, root=tmp_path / "some",
                                       fallback_dir=tmp_path / "random")
    assert source == "mixed" and soups.adapter_names(mixed) == CODES
    printed = capsys.readouterr().out
    assert "RANDOM stand-in" in printed and "trained adapters P1B" in printed
    soups.set_soup_weights(mixed, {"P1B": 1.0})
    torch.testing.assert_close(logits(mixed), logits(alone))        # P1B is the trained one


def test_generation_holds_the_model_lock(soup):
    import threading

    lock = soups.model_lock(soup)
    assert soups.model_lock(soup) is lock
    done = threading.Event()

    def run():
        soups.score_soup_answers(soup, tiny_tokenizer(), ["Hi"], weights={"P1A": 1}, scorer=_length_scores,
                                 max_new_tokens=2)
        done.set()

    with lock:                      # e.g. the widget is writing an answer
        thread = threading.Thread(target=run)
        thread.start()
        assert not done.wait(0.3)   # the cell waits instead of re-mixing the model under it
    assert done.wait(20)
    thread.join()


def test_pareto_plot_takes_a_front_dict_and_rings_the_front():
    import matplotlib

    matplotlib.use("Agg")
    from rlphf_lab.plots import plot_pareto_front, plot_pareto_fronts, plot_sweep_scores

    sweep = [{"label": f"t={t:.2f}", "t": t, "P2A": 1 - t, "P3A": t} for t in (0, 0.5, 1)]
    reference = [{"label": "prompting P2A", "P2A": 0.2, "P3A": 0.1}, {"label": "prompting P3A", "P2A": 0.1, "P3A": 0.3}]
    front = {"x": "P2A", "y": "P3A", "start": "P2A", "end": "P3A", "sweep": sweep, "reference": reference}
    fig = plot_pareto_front(front)
    ax = fig.axes[0]
    ringed = ax.collections[0].get_offsets().tolist()
    assert sorted(map(tuple, ringed)) == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]   # the references are dominated
    assert "friendly" in ax.get_ylabel() and "P2A to P3A" in ax.get_title()
    assert len(plot_pareto_fronts([front, front]).axes) == 2
    lines = plot_sweep_scores(front).axes[0].lines
    assert len(lines) == 4 and list(lines[0].get_xdata()) == [0, 0.5, 1]


def test_the_shipped_side_adapters_load_as_a_soup_without_training(one_thread):
    """The six trained adapters in data/adapters load on the real model, and the mix steers it:
    the concise soup answers shorter than the informative one from the same seed."""
    from rlphf_lab.models import load_policy

    model, tok = load_policy()                        # a fresh copy: load_soup adds adapters to it
    model, tok, source = soups.load_soup(model, tok)
    assert source == "shipped"
    prompts = ["Explain how a refrigerator keeps food cold.", "What are the benefits of regular exercise?"]
    concise = soups.score_soup_answers(model, tok, prompts, weights={"P2A": 1.0}, max_new_tokens=96)
    verbose = soups.score_soup_answers(model, tok, prompts, weights={"P2B": 1.0}, max_new_tokens=96)
    words = lambda rows: sum(len(r["response"].split()) for r in rows)
    assert words(concise) < words(verbose)


def test_an_adapter_loaded_again_with_another_alpha_gets_its_new_scale(tmp_path, one_thread):
    """The soup's cached (layer, adapter, scale) list is rebuilt when an adapter's r or alpha changes,
    not only when the names do."""
    from tiny_models import tiny_llama

    first = soups.random_lora_adapters(tiny_llama(), ["P1A"], tmp_path / "a", r=8, lora_alpha=16, std=0.1, seed=1)
    again = soups.random_lora_adapters(tiny_llama(), ["P1A"], tmp_path / "b", r=8, lora_alpha=64, std=0.1, seed=1)
    model = soups.load_adapters(tiny_llama(), first)
    soups.set_soup_weights(model, {"P1A": 1.0})
    model.delete_adapter("P1A")
    model.load_adapter(str(again["P1A"]), adapter_name="P1A")
    soups.set_soup_weights(model, {"P1A": 1.0})
    scales = {layer.scaling["P1A"] for layer, name, _ in soups.soup_state(model).layers}
    assert scales == {64 / 8}


def test_the_adapter_file_names_are_peft_s():
    from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME

    assert (soups.ADAPTER_CONFIG, soups.ADAPTER_WEIGHTS) == (CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME)


def test_load_soup_mine_takes_your_own_adapters_first_and_the_shipped_ones_for_the_rest(tmp_path, adapter_dirs,
                                                                                       monkeypatch, capsys):
    import shutil

    import rlphf_lab.soups.loading as loading

    for code in CODES:
        shutil.copytree(adapter_dirs[code], tmp_path / "shipped" / code / "adapter")
    shutil.copytree(adapter_dirs["P1B"], tmp_path / "mine" / "P1A" / "adapter")      # "my P1A": other weights
    monkeypatch.setattr(loading, "MY_ADAPTERS_DIR", tmp_path / "mine")
    model, _, source = soups.load_soup(tiny_llama(), tiny_tokenizer(), CODES, root=tmp_path / "shipped", source="mine")
    assert source == "shipped" and "Your own adapters" in capsys.readouterr().out
    assert model.adapter_sources["P1A"] == str(tmp_path / "mine" / "P1A" / "adapter")
    assert model.adapter_sources["P2A"] == str(tmp_path / "shipped" / "P2A" / "adapter")
    soups.set_soup_weights(model, {"P1A": 1.0})
    alone = soups.load_adapters(tiny_llama(), {"P1B": adapter_dirs["P1B"]})
    torch.testing.assert_close(logits(model), logits(alone))
    with pytest.raises(ValueError, match="'shipped'.*'mine'"):
        soups.load_soup(tiny_llama(), tiny_tokenizer(), CODES, source="yours")
