import pytest


@pytest.fixture(scope="session")
def policy():
    """The real SmolLM2 model and tokenizer, loaded once for the whole test session."""
    from rlphf_lab.models import load_policy

    return load_policy()


@pytest.fixture
def one_thread():
    """Tiny matrices: one torch thread is fastest (two threads spin and wait on a busy 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
