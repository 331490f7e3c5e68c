"""Thread pools for model work: sized to the cores, and NumPy's BLAS kept to one thread."""

from __future__ import annotations

import faiss
import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from assistant.core.base_models import limit_model_threads


def test_model_threads_follow_the_setting_and_blas_gets_one_thread() -> None:
    np.ones((64, 64)) @ np.ones((64, 64))  # NumPy's BLAS is loaded by now
    before_torch = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restores every pool's size afterwards
        assert limit_model_threads(2) == 2
        assert torch.get_num_threads() == 2
        assert faiss.omp_get_max_threads() == 2
        blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas, "NumPy's BLAS was not found"
        assert all(pool["num_threads"] == 1 for pool in blas)
    torch.set_num_threads(before_torch)
