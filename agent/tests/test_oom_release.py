"""Item 5: after an out-of-memory failure the pipeline and its memory are released (the
traceback's frames no longer hold them), so a second run in the process measures afresh;
an OOM in the warm-up says so."""

from __future__ import annotations

import gc
import weakref

import pytest

from klein_bench.backends.diffusers import tiny
from klein_bench.progress import SilentProgress

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from klein_bench.backends.diffusers.backend import run_protocol  # noqa: E402


def _run():
    return run_protocol(
        model="klein-tiny-random",
        preset_name="bf16-resident",
        runs=5,
        gpu_index=None,
        progress=SilentProgress(),
        salt=b"0" * 32,
    )


def test_after_an_oom_the_pipeline_is_gone_and_a_second_run_measures_afresh(monkeypatch):
    built = []
    build = tiny.build_pipeline

    def remembered(*args, **kwargs):
        pipe = build(*args, **kwargs)
        built.append(weakref.ref(pipe))
        return pipe

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")

    monkeypatch.setattr(tiny, "build_pipeline", remembered)
    with monkeypatch.context() as patch:
        patch.setattr(diffusers.Flux2Transformer2DModel, "forward", oom)
        failed = _run()
    gc.collect()

    assert (failed["outcome"]["status"], failed["outcome"]["phase"]) == ("out_of_memory", "warmup")
    assert failed["outcome"]["stage"] == "denoising"
    assert built[0]() is None

    second = _run()

    assert second["outcome"]["status"] == "success"
    assert len(second["timings"]["runs"]) == 5
