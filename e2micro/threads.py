"""One PyTorch thread for the parts whose float sums must be the same bytes on every machine."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def one_torch_thread():
    """PyTorch's float sums depend on its thread count (OMP_NUM_THREADS, the machine's cores): one
    thread makes the probe, the distilled ranges and the report's figures the same bytes on every run.
    The caller's thread count is restored, also on error."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
