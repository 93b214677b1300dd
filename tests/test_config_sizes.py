"""The three sizes (config.size, use_size, pick): quick for CI, class for a class period, full for the artifacts."""
import pytest

from rlphf_lab import config


@pytest.fixture
def clean(monkeypatch):
    monkeypatch.delenv("RLPHF_SIZE", raising=False)
    monkeypatch.delenv("RLPHF_QUICK", raising=False)
    monkeypatch.setattr(config, "_NOTEBOOK_SIZE", None)
    return monkeypatch


def test_commands_run_full_and_notebooks_default_to_class(clean):
    assert config.size() == "full" and config.pick(1, 3, in_class=2) == 3
    assert config.use_size("class") == "class"
    assert config.pick(1, 3, in_class=2) == 2 and not config.is_quick()
    assert config.pick(1, 3) == 3                     # no class value: the full one


@pytest.mark.parametrize("env, expected", [({"RLPHF_QUICK": "1"}, "quick"), ({"RLPHF_SIZE": "full"}, "full"),
                                           ({"RLPHF_SIZE": "quick"}, "quick"), ({"RLPHF_SIZE": "Class"}, "class")])
def test_the_environment_overrides_the_notebook(clean, env, expected):
    for key, value in env.items():
        clean.setenv(key, value)
    assert config.use_size("class") == expected
    assert config.pick("q", "f", in_class="c") == expected[0]
    assert config.is_quick() == (expected == "quick")


def test_bad_sizes_say_what_to_use(clean):
    clean.setenv("RLPHF_SIZE", "medium")
    with pytest.raises(ValueError, match="quick, class, full"):
        config.size()
    clean.setenv("RLPHF_SIZE", "full")
    clean.setenv("RLPHF_QUICK", "1")
    with pytest.raises(ValueError, match="disagree"):
        config.size()
    clean.delenv("RLPHF_QUICK")
    with pytest.raises(ValueError, match="Unknown size"):
        config.use_size("lecture")
