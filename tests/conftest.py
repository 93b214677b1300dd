import os

# MKL's conditional numerical reproducibility: without it, MKL picks kernels by memory alignment, and two
# identical tiny runs in one process can differ in the last bit (the resume == one-run tests). Set before
# torch loads MKL; rlphf_lab/__init__.py sets the same default for the lab itself.
os.environ.setdefault("MKL_CBWR", "AUTO")

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
