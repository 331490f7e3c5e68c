"""The ONNX forms of a model: export, int8 quantisation, the gate between them, sessions.

At training time a model is exported to ONNX with PyTorch's `torch.export`-based
exporter (dynamic batch and sequence axes) and quantised to int8 (`int8.py`:
activations quantised per token at run time, so a message scores the same in any
batch; channel scales measured on training messages). Both files are saved with
the model version, beside the figure each form scores on held-out data. The int8
form is the one served on the CPU only when it scores within a tolerance of fp32
(`passes`); the decision and both figures are recorded, so serving never measures
again.

Serving opens one ONNX Runtime session per model, shared by every thread (its
`run` is thread-safe), with as many intra-op threads as the machine has physical
cores and no busy-waiting between runs. On a CUDA device the fp32 form runs on
ONNX Runtime's CUDA provider when it is installed (`onnxruntime-gpu`), and on
PyTorch otherwise. A version saved without ONNX files is served by PyTorch.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.core import int8
from assistant.core.errors import ArtifactError, ConfigError
from assistant.core.files import file_sha256

FP32, INT8 = "fp32", "int8"
FORMS = (FP32, INT8)
RUNTIMES = ("auto", INT8, FP32, "torch")  # the `encoder_runtime` setting's values
OPSET = 18
CPU_PROVIDER, CUDA_PROVIDER = "CPUExecutionProvider", "CUDAExecutionProvider"
# The fp32 export must reproduce PyTorch's outputs this closely, or it is not used.
AGREEMENT = 1e-3

log = logging.getLogger(__name__)


def physical_cores() -> int:
    """Physical cores this process may run on: the intra-op threads of every session."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        physical = os.cpu_count() or 1
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else physical
    return max(1, min(physical, allowed))


def export(
    module: Any,
    example: Mapping[str, Any],
    path: Path,
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
) -> None:
    """Write `module` (called with the `example` tensors, by keyword order) to `path` as one
    self-contained ONNX file. `dynamic_axes` names each input's axes that vary (by
    default the first two: batch and sequence); axes sharing a name vary together."""
    import torch

    names = list(example)
    axes = dynamic_axes or {name: {0: "batch", 1: "sequence"} for name in names}
    dims = {axis: torch.export.Dim(axis) for given in axes.values() for axis in given.values()}
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module.eval(),
                (),
                kwargs=dict(example),
                input_names=names,
                output_names=list(output_names),
                dynamic_shapes={
                    name: {index: dims[axis] for index, axis in axes.get(name, {}).items()}
                    for name in names
                },
                opset_version=OPSET,
                dynamo=True,
                optimize=True,
                verbose=False,
            )
        program.save(str(path), external_data=False)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def passes(fp32: float | None, int8: float | None, tolerance: float) -> bool:
    """Whether the int8 figure is at most `tolerance` below fp32's (a negative tolerance:
    never). A figure that could not be measured never passes."""
    if fp32 is None or int8 is None:
        return False
    return int8 >= fp32 - tolerance - 1e-12


def file_record(path: Path) -> dict[str, Any]:
    return {"file": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size}


def versions() -> dict[str, str]:
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "opset": OPSET}


def session_options(threads: int | None = None) -> Any:
    """`threads` intra-op threads (by default one per physical core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Threads that spin between runs take CPU from the tokenizer and the server's own threads.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The CPU arena keeps the largest batch's buffers for good, growing in steps as rarer
    # batch shapes arrive: a long-running server's memory would creep.
    options.enable_cpu_mem_arena = False
    return options


def open_session(
    path: Path, providers: Sequence[str] = (CPU_PROVIDER,), threads: int | None = None
) -> Any:
    import onnxruntime

    options = session_options(threads)
    return onnxruntime.InferenceSession(str(path), options, providers=list(providers))


@dataclass(frozen=True)
class Session:
    """One loaded ONNX form: the session every thread shares, which form, where it runs."""

    session: Any
    form: str
    provider: str
    sha256: str

    @property
    def runtime(self) -> str:
        return f"onnx {self.form} ({self.provider})"

    def run(self, inputs: Mapping[str, Any]) -> list[Any]:
        """Outputs for `inputs` by name: token inputs as int64, float arrays as they are."""
        return self.session.run(None, {name: _as_input(inputs[name]) for name in self.input_names})

    @property
    def input_names(self) -> list[str]:
        return [node.name for node in self.session.get_inputs()]

    def output_width(self, index: int) -> int:
        return int(self.session.get_outputs()[index].shape[-1])


def _as_input(value: Any) -> Any:
    import numpy as np

    array = np.asarray(value)
    return array if array.dtype.kind == "f" else array.astype(np.int64, copy=False)


def serving_form(record: Mapping[str, Any] | None, device: str, runtime: str) -> tuple | None:
    """Which saved form serves, and on which providers, for a resolved `device` ("cpu",
    "cuda") and the `encoder_runtime` setting; None: PyTorch serves."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"encoder_runtime must be one of {', '.join(RUNTIMES)}")
    if runtime == "torch" or not record or not record.get("files"):
        return None
    if not _onnxruntime_installed():
        log.warning("onnxruntime is not installed: serving with PyTorch")
        return None
    if device == "cuda":
        if runtime == INT8:
            raise ConfigError(
                "the int8 ONNX form runs on the CPU; set device = 'cpu', or encoder_runtime = "
                "'auto' to run fp32 on the GPU"
            )
        import onnxruntime

        if CUDA_PROVIDER not in onnxruntime.get_available_providers():
            log.info("ONNX Runtime has no CUDA provider (onnxruntime-gpu): PyTorch runs on CUDA")
            return None
        return FP32, (CUDA_PROVIDER, CPU_PROVIDER)
    # Under 'auto', an index serves the form that embedded its rows (the gate's choice).
    form = (record.get("indexed_with") or record.get("chosen")) if runtime == "auto" else runtime
    if form not in record["files"]:
        log.warning("no %s ONNX form saved: serving with PyTorch", form)
        return None
    return form, (CPU_PROVIDER,)


def load_form(
    directory: Path,
    record: Mapping[str, Any] | None,
    device: str,
    runtime: str,
    hint: str,
    threads: int | None = None,
) -> Session | None:
    """The session of the form `serving_form` picks, its file checked against the recorded
    checksum, with `threads` intra-op threads (default: one per physical core); None when
    PyTorch serves."""
    choice = serving_form(record, device, runtime)
    if choice is None:
        return None
    form, providers = choice
    entry = record["files"][form]
    path = directory / entry["file"]
    if not path.is_file():
        raise ArtifactError(f"{path} is missing. {hint}")
    if file_sha256(path) != entry["sha256"]:
        raise ArtifactError(f"{path} is corrupt (checksum mismatch). {hint}")
    try:
        session = open_session(path, providers, threads)
    except Exception as error:  # ONNX Runtime raises its own exception types
        raise ArtifactError(f"{path} cannot be loaded ({error}). {hint}") from error
    return Session(session, form, session.get_providers()[0], entry["sha256"])


def gate_forms(
    folder: Path,
    stem: str,
    write_fp32: Callable[[Path], None],
    score: Callable[[Session], float | None],
    tolerance: float,
    measure: str,
    calibration: Sequence[Mapping[str, Any]] = (),
) -> tuple[dict[str, Any], dict[str, Session]]:
    """Export (`write_fp32`), quantise (its channel scales measured on the `calibration`
    token batches: training messages), score both forms on the CPU, and choose: the record
    saved with the version, and the two forms' sessions. Files are written to `folder` as
    `<stem>.onnx` and `<stem>.int8.onnx`. An export that fails leaves no file, a record of
    why and no session."""
    paths = {FP32: folder / f"{stem}.onnx", INT8: folder / f"{stem}.int8.onnx"}
    try:
        write_fp32(paths[FP32])
        int8.quantise(paths[FP32], paths[INT8], calibration)
        sessions = {
            form: Session(open_session(path), form, CPU_PROVIDER, file_sha256(path))
            for form, path in paths.items()
        }
    except Exception as error:  # the exporter and ONNX Runtime raise many kinds
        for path in paths.values():
            path.unlink(missing_ok=True)
        log.warning("no ONNX form saved (%s: %s): PyTorch will serve", type(error).__name__, error)
        return {"error": f"{type(error).__name__}: {error}"[:500]}, {}
    figures = {form: score(session) for form, session in sessions.items()}
    chosen = INT8 if passes(figures[FP32], figures[INT8], tolerance) else FP32
    record = {
        "files": {form: file_record(path) for form, path in paths.items()},
        "chosen": chosen,
        "gate": {
            "measure": measure,
            FP32: figures[FP32],
            INT8: figures[INT8],
            "tolerance": tolerance,
            "int8_passed": chosen == INT8,
        },
        "quantisation": {"method": int8.DESCRIPTION, "calibration_batches": len(calibration)},
        "exported_with": versions(),
    }
    return record, sessions


def copy_forms(record: Mapping[str, Any] | None, source: Path, target: Path) -> None:
    """Put the files of `record` from `source` into `target`: a hard link where both are
    on one file system, a copy otherwise."""
    for entry in (record or {}).get("files", {}).values():
        origin, destination = source / entry["file"], target / entry["file"]
        if destination.exists():
            continue
        try:
            os.link(origin, destination)
        except OSError:
            shutil.copy2(origin, destination)


def _onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
