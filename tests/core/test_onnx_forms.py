import pytest

from assistant.core.errors import ConfigError
from assistant.core.onnx_forms import CPU_PROVIDER, passes, physical_cores, serving_form
from assistant.core.settings import load_settings

RECORD = {"files": {"fp32": {}, "int8": {}}, "chosen": "int8"}


def test_int8_passes_within_the_tolerance_and_never_with_a_negative_one():
    assert passes(0.950, 0.947, 0.003)
    assert passes(0.950, 0.960, 0.0)
    assert not passes(0.950, 0.946, 0.003)
    assert not passes(0.950, 0.960, -1.0)
    assert not passes(None, 0.9, 0.003)


def test_the_chosen_form_serves_on_the_cpu_unless_told_otherwise():
    assert serving_form(RECORD, "cpu", "auto") == ("int8", (CPU_PROVIDER,))
    assert serving_form({**RECORD, "chosen": "fp32"}, "cpu", "auto")[0] == "fp32"
    assert serving_form({**RECORD, "chosen": "fp32"}, "cpu", "int8")[0] == "int8"
    assert serving_form(RECORD, "cpu", "fp32")[0] == "fp32"
    assert serving_form(RECORD, "cpu", "torch") is None


def test_versions_without_onnx_forms_are_served_by_pytorch():
    assert serving_form(None, "cpu", "auto") is None
    assert serving_form({"error": "export failed"}, "cpu", "auto") is None
    assert serving_form({"files": {}, "chosen": None}, "cpu", "auto") is None
    assert serving_form({"files": {"fp32": {}}, "chosen": "fp32"}, "cpu", "int8") is None


def test_on_cuda_int8_is_refused_and_pytorch_serves_without_the_cuda_provider():
    import onnxruntime

    with pytest.raises(ConfigError, match="runs on the CPU"):
        serving_form(RECORD, "cuda", "int8")
    choice = serving_form(RECORD, "cuda", "auto")
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert choice == ("fp32", ("CUDAExecutionProvider", CPU_PROVIDER))
    else:
        assert choice is None


def test_sessions_use_the_physical_cores():
    import os

    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


def test_the_retired_int8_setting_says_what_replaced_it():
    with pytest.raises(ConfigError, match="encoder_runtime"):
        load_settings(intent_int8=True)
    assert load_settings(encoder_runtime="torch").models.encoder_runtime == "torch"
