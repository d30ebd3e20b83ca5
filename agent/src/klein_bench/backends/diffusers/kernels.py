"""The diffusers runtime's kernel observer: the kernel path that really ran.

Settings say what was asked for; these figures are observed. `storage_dtypes` reads the
tensors each component holds (unwrapping tensor subclasses such as torchao's Float8
weights to the data they store). `KernelObserver` watches one generation at two levels:

- torch function mode: every `F.linear`, `F.scaled_dot_product_attention` and matmul call,
  with its input and weight dtypes (a tensor subclass shows up here before it unwraps);
- torch dispatch mode: the ATen kernels those calls became, so `aten._scaled_mm` (an FP8
  matmul) and the attention kernel SDPA chose (`_scaled_dot_product_flash_attention`,
  `..._efficient_attention`, `..._cudnn_attention`; none of them: the math fallback).

Both modes cost Python time per call, so the observer watches an untimed warm-up only.
The runtime says which component is running (`component`), so each component's matmul
dtype is known too.

Its `section` is the payload's kernels section (klein_bench.kernels.section).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from klein_bench.kernels import COMPONENTS, SOURCE_OBSERVED, section

# ATen matmul kernels, and the FP8 one.
_MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "_scaled_mm", "_int_mm"}
_FP8_OPS = {"_scaled_mm", "_scaled_mm_v2", "_scaled_grouped_mm"}
# The kernel SDPA dispatched to, by ATen op name.
_SDPA_KERNELS = {
    "_scaled_dot_product_flash_attention": "sdpa-flash",
    "_scaled_dot_product_flash_attention_for_cpu": "sdpa-flash-cpu",
    "_scaled_dot_product_efficient_attention": "sdpa-efficient",
    "_scaled_dot_product_cudnn_attention": "sdpa-cudnn",
    "_scaled_dot_product_fused_attention_overrideable": "sdpa-fused",
}
# Attention from other libraries, by a piece of their op or function names.
_OTHER_ATTENTION = (("flash_attn", "flash-attn"), ("sageattn", "sage"), ("xformers", "xformers"))


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _stored_tensors(tensor: Any) -> list[Any]:
    """The plain tensors a (possibly subclassed) tensor stores."""
    flatten = getattr(type(tensor), "__tensor_flatten__", None)
    if flatten is None or type(tensor).__name__ in ("Tensor", "Parameter"):
        return [tensor]
    names, _ = tensor.__tensor_flatten__()
    inner = []
    for name in names:
        inner.extend(_stored_tensors(getattr(tensor, name)))
    return inner


def storage_dtype(module: Any) -> str | None:
    """The dtype that holds most of a module's weight bytes."""
    sizes: Counter[str] = Counter()
    for parameter in module.parameters():
        for stored in _stored_tensors(parameter):
            sizes[_dtype_name(stored.dtype)] += stored.numel() * stored.element_size()
    return sizes.most_common(1)[0][0] if sizes else None


def storage_dtypes(components: dict[str, Any]) -> dict[str, str]:
    dtypes = {name: storage_dtype(module) for name, module in components.items()}
    return {name: dtype for name, dtype in dtypes.items() if dtype is not None}


def _name(func: Any) -> str:
    """'_scaled_mm' from aten._scaled_mm.default, 'linear' from F.linear."""
    overload = getattr(func, "overloadpacket", None)
    if overload is not None:
        return str(getattr(overload, "__name__", overload)).split(".")[-1]
    return str(getattr(func, "__name__", func))


def _tensor_dtypes(args: Any) -> list[str]:
    import torch

    return [_dtype_name(a.dtype) for a in args if isinstance(a, torch.Tensor)]


class KernelObserver:
    """Counts what one generation ran; use as a context manager around it."""

    def __init__(self) -> None:
        self.matmuls = 0
        self.fp8_matmuls = 0
        self.matmul_dtypes: Counter[str] = Counter()
        self.sdpa_calls = 0
        self.attention_kernels: Counter[str] = Counter()
        # The component running now (set by the runtime), and its matmuls' dtypes.
        self.component: str | None = None
        self.component_dtypes: dict[str, Counter[str]] = {}
        self._modes: list[Any] = []

    def __enter__(self) -> KernelObserver:
        from torch.overrides import TorchFunctionMode
        from torch.utils._python_dispatch import TorchDispatchMode

        observer = self

        class _Functions(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                observer.saw_function(func, args)
                return func(*args, **(kwargs or {}))

        class _Kernels(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                observer.saw_kernel(func, args)
                return func(*args, **(kwargs or {}))

        self._modes = [_Functions(), _Kernels()]
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc_info)
        self._modes = []

    def saw_function(self, func: Any, args: Any) -> None:
        name = _name(func)
        if name == "scaled_dot_product_attention":
            self.sdpa_calls += 1
        else:
            self._other_attention(name)

    def saw_kernel(self, func: Any, args: Any) -> None:
        name = _name(func)
        if name in _MATMUL_OPS or name in _FP8_OPS:
            self.matmuls += 1
            if name in _FP8_OPS:
                self.fp8_matmuls += 1
            # The operands: addmm's first argument is the bias.
            operands = args[1:3] if name in ("addmm", "baddbmm") else args[:2]
            for dtype in _tensor_dtypes(operands):
                self.matmul_dtypes[dtype] += 1
                if self.component is not None:
                    self.component_dtypes.setdefault(self.component, Counter())[dtype] += 1
        elif name in _SDPA_KERNELS:
            self.attention_kernels[_SDPA_KERNELS[name]] += 1
        else:
            self._other_attention(name)

    def _other_attention(self, name: str) -> None:
        for piece, label in _OTHER_ATTENTION:
            if piece in name:
                self.attention_kernels[label] += 1

    @property
    def attention(self) -> str | None:
        """The attention kernel that ran most; "sdpa-math" when SDPA ran none of its fused
        kernels (the math fallback decomposes into plain matmuls)."""
        if self.attention_kernels:
            return self.attention_kernels.most_common(1)[0][0]
        return "sdpa-math" if self.sdpa_calls else None

    def section(self, weight_dtypes: dict[str, str]) -> dict[str, Any]:
        """The payload's kernels section from what was observed."""
        return section(
            source=SOURCE_OBSERVED,
            weight_dtypes=weight_dtypes,
            compute_dtypes={
                name: self.component_dtypes[name].most_common(1)[0][0]
                for name in COMPONENTS
                if self.component_dtypes.get(name)
            },
            fp8_matmul=self.fp8_matmuls > 0,
            attention=self.attention,
            matmul_dtypes=[dtype for dtype, _ in self.matmul_dtypes.most_common(8)],
            matmuls=self.matmuls,
            fp8_matmuls=self.fp8_matmuls,
        )
