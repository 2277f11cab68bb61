"""Fixtures shared by the DICE tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: on a 2-core machine whose other core is busy, two OpenMP threads
    make the MediaPipe trunk's many small convolutions ~100x slower (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
