"""Nothing lost, nothing silent (issue 17): every probe of a hostile but realistic user, as a test.

Damaged adapters, checkpoints and caches end in one clear error naming the file and the fix;
a failed load leaves the model as it was; training never replaces finished work unless told;
the CLI checks every option before a model loads and answers with one line `error: ...`.
Everything runs on the tiny random Llama (tests/tiny_models.py) or on no model at all.
"""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from rlphf_lab import soups
from tiny_models import tiny_llama, tiny_tokenizer

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]

# --------------------------------------------------------------------------------------------
# Adapters: every damaged file is a clear error, and a failed load leaves the model as it was
# --------------------------------------------------------------------------------------------

def _truncate(file):
    file.write_bytes(file.read_bytes()[:100])


def _random_bytes(file):
    file.write_bytes(bytes(range(256)) * 8)


def _empty(file):
    file.write_bytes(b"")


def _nan(file):
    tensors = load_file(file)
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, file)


def _rename_keys(file):
    save_file({k.replace("lora_A", "lora_X"): v for k, v in load_file(file).items()}, file)


def _bad_json(folder):
    (folder / "adapter_config.json").write_text('{"r": 16, "lora_alpha": ')


def _wrong_rank(folder):
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))


def _no_weights(folder):
    (folder / "adapter_model.safetensors").unlink()


DAMAGE = {   # name: (what it does to the folder, what the error must say)
    "truncated weights": (lambda d: _truncate(d / "adapter_model.safetensors"), r"adapter_model.safetensors cannot be read"),
    "random bytes": (lambda d: _random_bytes(d / "adapter_model.safetensors"), r"adapter_model.safetensors cannot be read"),
    "empty weights file": (lambda d: _empty(d / "adapter_model.safetensors"), r"adapter_model.safetensors cannot be read"),
    "invalid JSON config": (_bad_json, r"adapter_config.json is not valid JSON"),
    "config rank differs from weights": (_wrong_rank, r"has shape \(16, 32\), but r=8"),
    "missing weights file": (_no_weights, r"has no adapter_model.safetensors"),
    "NaN weights": (lambda d: _nan(d / "adapter_model.safetensors"), r"NaN or inf"),
    "renamed weight keys": (lambda d: _rename_keys(d / "adapter_model.safetensors"), r"missing .* unexpected"),
}


@pytest.fixture(scope="module")
def good_adapters(tmp_path_factory):
    return soups.random_lora_adapters(tiny_llama(), ["P1A", "P2A"], tmp_path_factory.mktemp("good"), r=16, std=0.1)


def _damaged_copy(good, tmp_path, damage):
    folder = tmp_path / "P2A"
    shutil.copytree(good["P2A"], folder)
    DAMAGE[damage][0](folder)
    return folder


def _model_state(model):
    """Everything a failed load must not change: parameters, module types, adapters, flags."""
    return ({n: p.detach().clone() for n, p in model.named_parameters()},
            {n: type(m).__name__ for n, m in model.named_modules()},
            soups.adapter_names(model), {n: p.requires_grad for n, p in model.named_parameters()},
            sorted(vars(model)))


def _assert_same_state(before, after):
    params_a, types_a, *rest_a = before
    params_b, types_b, *rest_b = after
    assert types_a == types_b and rest_a == rest_b
    assert params_a.keys() == params_b.keys()
    for name in params_a:
        assert torch.equal(params_a[name], params_b[name]), name


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_adapter_is_a_clear_error_naming_its_file(tmp_path, good_adapters, damage):
    folder = _damaged_copy(good_adapters, tmp_path, damage)
    model = tiny_llama()
    with pytest.raises(ValueError, match=DAMAGE[damage][1]) as err:
        soups.load_adapters(model, {"P2A": folder})
    message = str(err.value)
    assert message.startswith("Adapter P2A: ") and str(folder) in message
    assert "retrain it" in message and "git checkout" in message            # ... and how to fix it
    assert soups.adapter_names(model) == []


@pytest.mark.parametrize("damage", ["truncated weights", "renamed weight keys", "NaN weights"])
@pytest.mark.parametrize("start", ["base model", "model with an adapter"])
def test_a_failed_load_leaves_the_model_exactly_as_it_was(tmp_path, good_adapters, damage, start):
    model = tiny_llama()
    if start == "model with an adapter":
        model = soups.load_adapters(model, {"P1A": good_adapters["P1A"]})
    before = _model_state(model)
    bad = _damaged_copy(good_adapters, tmp_path, damage)
    name = "P1B" if start == "model with an adapter" else "P1A"
    with pytest.raises(ValueError, match="Adapter P2A"):
        soups.load_adapters(model, {name: good_adapters["P1A"], "P2A": bad})    # a good one and a bad one
    _assert_same_state(before, _model_state(model))
    again = soups.load_adapters(model, {name: good_adapters["P1A"], "P2A": good_adapters["P2A"]})   # a retry works
    assert soups.adapter_names(again)[-2:] == [name, "P2A"]


def test_a_failure_inside_peft_is_rolled_back_too(good_adapters, monkeypatch):
    """Checks cannot foresee everything: if PEFT itself fails half way, the LoRA layers it already
    put into the base model come out again."""
    from peft import PeftModel

    model = tiny_llama()
    before = _model_state(model)

    def fail(self, *args, **kwargs):
        raise RuntimeError("disk vanished")
    monkeypatch.setattr(PeftModel, "load_adapter", fail)
    with pytest.raises(RuntimeError, match="disk vanished"):
        soups.load_adapters(model, good_adapters)          # the first adapter loads, the second fails
    _assert_same_state(before, _model_state(model))
    monkeypatch.undo()
    soups.load_adapters(model, good_adapters)


def test_load_soup_names_the_adapter_that_fails(tmp_path, good_adapters):
    for code in ("P1A", "P2A"):
        shutil.copytree(good_adapters[code], tmp_path / code / "adapter")
    _truncate(tmp_path / "P2A" / "adapter" / "adapter_model.safetensors")
    model = tiny_llama()
    with pytest.raises(ValueError, match=r"Adapter P2A: .*P2A/adapter/adapter_model.safetensors cannot be read"):
        soups.load_soup(model, tiny_tokenizer(), ["P1A", "P2A"], root=tmp_path, verbose=False)
    assert soups.adapter_names(model) == []


def test_damaged_random_stand_ins_in_the_cache_are_made_again(tmp_path):
    model, _, source = soups.load_soup(tiny_llama(), tiny_tokenizer(), ["P1A"], root=tmp_path / "none",
                                       fallback_dir=tmp_path / "random", verbose=False)
    _truncate(tmp_path / "random" / "P1A" / "adapter_model.safetensors")
    again, _, _ = soups.load_soup(tiny_llama(), tiny_tokenizer(), ["P1A"], root=tmp_path / "none",
                                  fallback_dir=tmp_path / "random", verbose=False)
    assert soups.adapter_names(again) == ["P1A"]


def test_huge_soup_weights_do_not_overflow_into_the_base_model():
    weights = soups.check_weights({"P1A": 1e308, "P2A": 1e308}, ["P1A", "P2A"])
    assert weights == {"P1A": 0.5, "P2A": 0.5}
    assert soups.check_weights({"P1A": 1e308, "P2A": 0.0}, ["P1A", "P2A"]) == {"P1A": 1.0, "P2A": 0.0}
