import pytest


@pytest.fixture(scope="session")
def policy():
    """The real SmolLM2 model and tokenizer, loaded once for the whole test session."""
    from rlphf_lab.models import load_policy

    return load_policy()
