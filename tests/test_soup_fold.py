"""The soup folded into the base weights (soups.fold) on a tiny random Llama: same logits as the live
soup, exact restore, no drift, no memory growth, the same errors, and no LoRA branch in the forward pass."""
import json
import shutil
import threading

import pytest
import torch

from rlphf_lab import soups
from tiny_models import BAD_SOUP_WEIGHTS, three_soup_adapters, tiny_llama

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")

CODES = ["P1A", "P1B", "P2A"]
# fp32: folding only reorders the sums, (W + sum_i D_i) x against W x + sum_i s_i B_i (A_i x)
ATOL, RTOL = 1e-5, 1e-4


@pytest.fixture(scope="module")
def adapter_dirs(tmp_path_factory):
    return three_soup_adapters(tmp_path_factory.mktemp("fold_adapters"))


@pytest.fixture
def soup(adapter_dirs, one_thread):
    return soups.load_adapters(tiny_llama(), adapter_dirs)


def logits(model, ids=torch.tensor([[5, 17, 99, 3, 250, 42, 7, 128]])):
    with torch.no_grad():
        return model(input_ids=ids).logits


def base_weights(model) -> dict[str, torch.Tensor]:
    """Copies of every base weight the adapters touch (the LoRA layers' base_layer.weight)."""
    from peft.tuners.lora import LoraLayer

    return {name: m.get_base_layer().weight.detach().clone() for name, m in model.named_modules()
            if isinstance(m, LoraLayer)}


def assert_weights_equal(model, expected):
    now = base_weights(model)
    assert now.keys() == expected.keys() and len(now) == 4            # 2 layers x (q_proj, v_proj)
    for name in expected:
        assert torch.equal(now[name], expected[name]), name


def live_logits(model, weights, normalize=True):
    soups.set_soup_weights(model, weights, normalize)
    assert not soups.is_folded(model)
    return logits(model)


def count_lora_calls(model):
    """A counter of lora_A forward calls: zero while folded (PEFT skips merged layers)."""
    calls = []
    handles = [m.register_forward_hook(lambda *_: calls.append(1)) for name, m in model.named_modules()
               if name.rpartition(".")[0].endswith("lora_A")]
    assert len(handles) == 4 * len(model.peft_config)
    return calls, handles


@pytest.mark.parametrize("weights, normalize", [
    ({"P1A": 0.2, "P1B": 0.5, "P2A": 0.3}, True),
    ({"P1A": 2, "P1B": 6}, True),                      # P2A left out: switched off
    ({"P1A": 0.0, "P1B": 1.0, "P2A": 3.0}, True),      # a weight of 0: its columns are dropped
    ({"P1B": 2.0, "P2A": 0.5}, False),                 # weights used as given
])
def test_folded_logits_equal_the_live_soup(soup, weights, normalize):
    live = live_logits(soup, weights, normalize)
    applied_live = soups.soup_weights(soup)
    applied = soups.fold_soup_weights(soup, weights, normalize)
    assert applied == applied_live == soups.soup_weights(soup)
    assert soups.is_folded(soup)
    calls, handles = count_lora_calls(soup)
    folded = logits(soup)
    assert calls == []                                 # no LoRA branch ran: the delta is in W
    torch.testing.assert_close(folded, live, atol=ATOL, rtol=RTOL)
    assert not torch.allclose(folded, logits(tiny_llama()), atol=1e-3)    # and the soup is not the base model
    soups.unfold_soup(soup)
    logits(soup)
    assert calls                                       # live again: the branches run
    for h in handles:
        h.remove()


def test_folded_soup_equals_the_weighted_delta_written_by_hand(soup):
    w = {"P1A": 0.25, "P1B": 0.25, "P2A": 0.5}
    deltas = soups.exact_delta(soup, w)
    model = tiny_llama()
    with torch.no_grad():
        for module, delta in deltas.items():
            model.get_submodule(module).weight += delta
    soups.fold_soup_weights(soup, w)
    torch.testing.assert_close(logits(soup), logits(model), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("code", CODES)
def test_one_hot_fold_equals_the_adapter_alone(soup, adapter_dirs, code):
    from peft import PeftModel

    alone = PeftModel.from_pretrained(tiny_llama(), str(adapter_dirs[code])).eval()
    soups.fold_soup_weights(soup, {c: 0.0 for c in CODES} | {code: 1.0})
    torch.testing.assert_close(logits(soup), logits(alone), atol=ATOL, rtol=RTOL)
    soups.fold_soup_weights(soup, {code: 1.0})         # the others left out
    torch.testing.assert_close(logits(soup), logits(alone), atol=ATOL, rtol=RTOL)


def test_unfold_restores_every_base_weight_bit_for_bit(soup):
    originals = base_weights(soup)
    live = logits(soup)                                # load_adapters' equal-weight soup
    soups.fold_soup_weights(soup, {"P1A": 0.7, "P2A": 0.3})
    assert not torch.equal(base_weights(soup)["base_model.model.model.layers.0.self_attn.q_proj"],
                           originals["base_model.model.model.layers.0.self_attn.q_proj"])
    assert soups.unfold_soup(soup) is True
    assert not soups.is_folded(soup)
    assert_weights_equal(soup, originals)
    assert soups.unfold_soup(soup) is False            # nothing folded: nothing to do
    # live again at the folded weights, exactly what set_soup_weights gives
    torch.testing.assert_close(logits(soup), live_logits(soup, {"P1A": 0.7, "P2A": 0.3}), atol=0, rtol=0)
    assert not torch.equal(logits(soup), live)


def test_a_thousand_folds_neither_drift_nor_grow(soup):
    originals = base_weights(soup)
    soups.fold_soup_weights(soup, {"P1A": 1, "P1B": 2, "P2A": 3})
    first = base_weights(soup)
    memory = soups.fold_memory(soup)
    # 4 layers x (original, B_cat, A_cat, partial sum S) + one scratch buffer
    assert memory["tensors"] == 17 and memory["bytes"] > 0
    gen = torch.Generator().manual_seed(0)
    for i in range(1000):
        raw = torch.rand(3, generator=gen).tolist()
        keep = torch.rand(3, generator=gen) < 0.8
        weights = {c: (0.0 if i % 7 == 0 and j == 0 else v) for j, (c, v) in enumerate(zip(CODES, raw)) if keep[j]}
        if not any(weights.values()):
            weights = {"P1B": 1.0}
        soups.fold_soup_weights(soup, weights)
        assert soups.fold_memory(soup) == memory        # no new saved state, ever
    soups.fold_soup_weights(soup, {"P1A": 1, "P1B": 2, "P2A": 3})
    assert_weights_equal(soup, first)                   # recomputed from the original, not accumulated
    soups.unfold_soup(soup)
    assert_weights_equal(soup, originals)
    assert soups.fold_memory(soup) == memory


@pytest.mark.parametrize("weights, message", BAD_SOUP_WEIGHTS)
def test_bad_weights_raise_the_same_errors_and_touch_nothing(soup, weights, message):
    with pytest.raises(ValueError, match=message) as live_error:
        soups.set_soup_weights(soup, weights)
    soups.fold_soup_weights(soup, {"P1A": 0.5, "P1B": 0.5})
    before, before_logits = base_weights(soup), logits(soup)
    with pytest.raises(ValueError, match=message) as fold_error:
        soups.fold_soup_weights(soup, weights)
    assert str(fold_error.value) == str(live_error.value)
    assert soups.is_folded(soup) and soups.soup_weights(soup) == {"P1A": 0.5, "P1B": 0.5, "P2A": 0.0}
    assert_weights_equal(soup, before)
    assert torch.equal(logits(soup), before_logits)


def test_set_soup_weights_after_a_fold_unfolds_first(soup, adapter_dirs):
    originals = base_weights(soup)
    soups.fold_soup_weights(soup, {"P1A": 1.0})
    applied = soups.set_soup_weights(soup, {"P1B": 0.4, "P2A": 0.6})
    assert not soups.is_folded(soup)
    assert_weights_equal(soup, originals)               # the originals copied back: no double delta
    assert applied == soups.soup_weights(soup)
    calls, handles = count_lora_calls(soup)
    live = logits(soup)
    for h in handles:
        h.remove()
    assert calls                                        # the live branches compute the new soup
    fresh = soups.load_adapters(tiny_llama(), adapter_dirs)
    torch.testing.assert_close(live, live_logits(fresh, {"P1B": 0.4, "P2A": 0.6}), atol=0, rtol=0)


def test_folded_context_manager_restores_the_soup_and_holds_the_lock(soup):
    originals = base_weights(soup)
    soups.set_soup_weights(soup, {"P1A": 0.3, "P2A": 0.7})
    before = logits(soup)
    got = []
    with soups.folded(soup, {"P1B": 1.0}) as applied:
        assert applied["P1B"] == 1.0 and soups.is_folded(soup)
        thread = threading.Thread(target=lambda: got.append(soups.model_lock(soup).acquire(timeout=0.2)))
        thread.start()
        thread.join()
        assert got == [False]                           # another thread cannot re-mix the model meanwhile
    assert not soups.is_folded(soup)
    assert_weights_equal(soup, originals)
    assert soups.soup_weights(soup) == {"P1A": 0.3, "P1B": 0.0, "P2A": 0.7}
    assert torch.equal(logits(soup), before)
    # a folded model comes back folded, at its weights
    soups.fold_soup_weights(soup, {"P1A": 0.5, "P1B": 0.5})
    folded_before = base_weights(soup)
    with soups.folded(soup, {"P2A": 1.0}):
        pass
    assert soups.is_folded(soup)
    assert_weights_equal(soup, folded_before)
    # and an error inside still restores
    with pytest.raises(RuntimeError):
        with soups.folded(soup, {"P2A": 1.0}):
            raise RuntimeError("boom")
    assert_weights_equal(soup, folded_before)


def test_peft_disable_adapter_on_a_folded_model_gives_the_base_then_the_live_soup(soup):
    """PEFT's own unmerge subtracts exactly the folded delta: its state stays truthful."""
    originals = base_weights(soup)
    w = {"P1A": 0.6, "P1B": 0.4}
    live = live_logits(soup, w)
    soups.fold_soup_weights(soup, w)
    with soup.disable_adapter():
        torch.testing.assert_close(logits(soup), logits(tiny_llama()), atol=ATOL, rtol=RTOL)
    assert not soups.is_folded(soup)
    torch.testing.assert_close(logits(soup), live, atol=ATOL, rtol=RTOL)
    soups.unfold_soup(soup)                             # and the exact weights come back by copy
    assert_weights_equal(soup, originals)


# PEFT's load_adapter calls set_adapter, which unmerges (warning) before load_adapters' set_soup_weights unfolds
@pytest.mark.filterwarnings("ignore:Adapter cannot be set when the model is merged")
def test_loading_another_adapter_while_folded_keeps_the_true_originals(soup, tmp_path):
    originals = base_weights(soup)
    soups.fold_soup_weights(soup, {"P1A": 1.0})
    extra = soups.random_lora_adapters(tiny_llama(), ["P3A"], tmp_path, r=8, std=0.1, seed=5)
    soups.load_adapters(soup, extra)                    # set_soup_weights inside: unfolds first
    assert_weights_equal(soup, originals)
    w = {"P1A": 0.2, "P3A": 0.8}
    live = live_logits(soup, w)
    soups.fold_soup_weights(soup, w)                    # factors rebuilt for four adapters
    torch.testing.assert_close(logits(soup), live, atol=ATOL, rtol=RTOL)
    soups.unfold_soup(soup)
    assert_weights_equal(soup, originals)


def test_rslora_scale_is_folded_too(adapter_dirs, tmp_path, one_thread):
    rs = tmp_path / "P1A"
    shutil.copytree(adapter_dirs["P1A"], rs)
    cfg = json.loads((rs / "adapter_config.json").read_text()) | {"use_rslora": True}
    (rs / "adapter_config.json").write_text(json.dumps(cfg))
    model = soups.load_adapters(tiny_llama(), {"P1A": rs, "P2A": adapter_dirs["P2A"]})
    w = {"P1A": 0.5, "P2A": 0.5}
    live = live_logits(model, w)
    soups.fold_soup_weights(model, w)
    torch.testing.assert_close(logits(model), live, atol=ATOL, rtol=RTOL)


def test_greedy_generation_is_the_same_folded(soup):
    ids = torch.tensor([[5, 17, 99, 3]])
    w = {"P1A": 0.2, "P1B": 0.3, "P2A": 0.5}
    soups.set_soup_weights(soup, w)
    with torch.no_grad():
        live = soup.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
        with soups.folded(soup, w):
            fast = soup.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12,
                                 do_sample=False)
    assert torch.equal(live, fast)


def test_bf16_fold_is_within_bf16_rounding(adapter_dirs, one_thread):
    """bf16: W_soup is rounded once per element (relative 2^-9); the live path rounds W x instead."""
    model = soups.load_adapters(tiny_llama().to(torch.bfloat16), adapter_dirs)
    originals = base_weights(model)
    w = {"P1A": 0.2, "P1B": 0.5, "P2A": 0.3}
    live = live_logits(model, w).float()
    soups.fold_soup_weights(model, w)
    fold = logits(model).float()
    # W_soup written in fp32 and rounded once: within half a bf16 step of the fp32 value
    exact = soups.exact_delta(model, w)
    for name, weight in base_weights(model).items():
        want = originals[name].float() + exact[name.removeprefix("base_model.model.")]
        assert weight.dtype == torch.bfloat16
        assert ((weight.float() - want).abs() <= want.abs() * 2 ** -8 + 1e-30).all()
    base_gap = (logits(tiny_llama().to(torch.bfloat16)).float() - live).abs().max()
    gap = (fold - live).abs().max()
    assert gap < 0.1 * base_gap                          # far closer to the live soup than the base model is
    soups.unfold_soup(model)
    assert_weights_equal(model, originals)


def test_a_retrained_or_reloaded_adapter_is_folded_with_its_new_factors(soup):
    """The fold copies each adapter's A and B once; changing them in place (an optimizer step,
    load_state_dict) or loading them again must not fold the stale copies."""
    weights = {"P1A": 0.5, "P2A": 0.5}
    soups.fold_soup_weights(soup, weights)
    soups.unfold_soup(soup)
    with torch.no_grad():
        for module in soup.modules():
            if hasattr(module, "lora_B") and "P1A" in module.lora_B:
                module.lora_B["P1A"].weight.mul_(3.0)
    expected = live_logits(soup, weights)
    soups.fold_soup_weights(soup, weights)
    assert torch.allclose(logits(soup), expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_slider_drag_refolds_only_the_moving_adapters_and_equals_a_fresh_fold(adapter_dirs, one_thread, dtype):
    """Moving one slider changes two adapters: their columns are added to the kept partial sum
    S = W + w_R B_R A_R of the others, and every weight stays what a fold from scratch writes (fp32: up to the
    order of the sums; bf16: one rounding of the same fp32 value)."""
    model = soups.load_adapters(tiny_llama().to(dtype), adapter_dirs)
    originals = base_weights(model)
    soups.fold_soup_weights(model, {"P1A": 0.5, "P1B": 0.5, "P2A": 1.0})
    fold = model.__dict__["_soup_fold"]
    assert fold.rest is None                                   # a first fold: W + (B_cat diag(w)) A_cat
    for i, t in enumerate((0.2, 0.7, 1.0, 0.4, 0.9)):          # the P1 slider moves, P2A keeps its weight
        w = {"P1A": 1 - t, "P1B": t, "P2A": 1.0}
        applied = soups.fold_soup_weights(model, w)
        if i == 0:                                             # one move: folded plainly, nothing kept
            assert fold.rest is None
        else:                                                  # a drag: S = W + w_P2A B A kept, P1 added on top
            assert list(fold.rest) == ["P2A"] and fold.moving == ("P1A", "P1B")
            assert fold.rest["P2A"] == pytest.approx(applied["P2A"], rel=1e-9)
        fresh = soups.load_adapters(tiny_llama().to(dtype), adapter_dirs)
        live = live_logits(fresh, w)
        soups.fold_soup_weights(fresh, w)
        assert fresh.__dict__["_soup_fold"].rest is None       # fresh: one fold from the original
        for (name, got), want in zip(base_weights(model).items(), base_weights(fresh).values()):
            if dtype == torch.float32:
                torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
            else:                                              # both round the fp32 soup once
                assert ((got.float() - want.float()).abs() <= want.float().abs() * 2 ** -7 + 1e-30).all(), name
        tol = dict(atol=ATOL, rtol=RTOL) if dtype == torch.float32 else dict(atol=0.05, rtol=0.05)
        torch.testing.assert_close(logits(model).float(), live.float(), **tol)
    soups.fold_soup_weights(model, {"P1A": 0.6, "P1B": 0.4, "P2A": 0.5})    # another slider: S is rebuilt
    assert fold.rest is None or "P2A" not in fold.rest
    soups.unfold_soup(model)
    assert_weights_equal(model, originals)                     # and the originals come back exactly
