"""How figures read on the pages. The same functions write the sentences and the tables,
so "2.3 s" in the verdict is "2.3 s" in the table below it.

Memory is stored in MiB and shown in GiB (MiB / 1024), labelled "GiB" everywhere: the
unit nvidia-smi counts in, and what a "24 GB" card holds.
"""

from __future__ import annotations

import re

from klein_bench.contract.figures import KERNEL_LOADINGS, KERNEL_SOURCES, STAGES

from benchmarks.services.catalog import without_vendor

MISSING = "\u2013"  # an en dash: "no figure"


def seconds(value: float | None) -> str:
    """'0.85 s', '2.3 s', '14 s': two significant figures below 10 s."""
    if value is None:
        return MISSING
    if value < 1:
        return f"{value:.2f} s"
    if value < 10:
        return f"{value:.1f} s"
    return f"{value:.0f} s"


def gb_number(mib: float | None) -> str:
    if mib is None:
        return MISSING
    return f"{mib / 1024:.1f}"


def gb(mib: float | None) -> str:
    """'19.8 GiB' from MiB."""
    if mib is None:
        return MISSING
    return f"{gb_number(mib)} GiB"


def gib(mib: float | None) -> str:
    """'19.8 GiB' from MiB: what the agent measured, in binary units."""
    if not isinstance(mib, (int, float)):  # also a figure a reported section left out
        return MISSING
    return f"{gb_number(mib)} GiB"


def card_gb(mib: float | None) -> str:
    """A card's memory, whole where it is: '12 GiB', '141 GiB'."""
    if mib is None:
        return MISSING
    value = mib / 1024
    return f"{value:.0f} GiB" if abs(value - round(value)) < 0.05 else f"{value:.1f} GiB"


def gb_range(low: float, high: float) -> str:
    """'8.1-9.4 GiB' from MiB."""
    return f"{gb_number(low)}\u2013{gb_number(high)} GiB"


def seconds_range(low: float, high: float) -> str:
    """'2.1-2.9 s': both ends to the precision of the lower one."""
    return f"{seconds(low).removesuffix(' s')}\u2013{seconds(high)}"


def work(tflop: float | None) -> str:
    """Floating-point work to three significant figures in a unit that keeps them:
    '12.3 TFLOP', '0.42 GFLOP' is '420 MFLOP' (a test model's image is a few MFLOP)."""
    if tflop is None:
        return MISSING
    flop = tflop * 1e12
    for unit, scale in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if flop >= scale:
            return f"{flop / scale:.3g} {unit}"
    return f"{flop:.3g} FLOP"


def stage(name: object) -> str:
    """A pipeline stage in words: 'VAE decode'."""
    return STAGES.get(name, plain(name)) if isinstance(name, str) else plain(name)


def number(n: int | float | None) -> str:
    """'19,799': thousands separated."""
    if n is None:
        return MISSING
    return f"{n:,}"


def joules(value: float | None) -> str:
    """'780 J (0.22 Wh)': joules, with watt-hours for people who think in electricity bills."""
    if value is None:
        return MISSING
    return f"{value:.0f} J ({value / 3600:.2f} Wh)"


def percent(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value * 100:.0f}%"


def short_gpu_name(name: str) -> str:
    """'RTX 4090' from 'NVIDIA GeForce RTX 4090', for plots and narrow cells."""
    return without_vendor(name) or name


def names_memory(name: str) -> bool:
    """Whether a card's name already says its memory size ('RTX 5060 Ti 16 GB')."""
    return bool(re.search(r"\d\s*GB\b", name, re.IGNORECASE))


def card_name(gpu) -> str:
    """'RTX 3090 24 GiB', 'RTX 5060 Ti 16 GB', 'CPU (no GPU)': a card's short name with its
    memory, wherever cards are listed to choose from (unless the name says it already)."""
    name = short_gpu_name(gpu.name)
    if not gpu.vram_mb or names_memory(gpu.name):
        return name
    return f"{name} {card_gb(gpu.vram_mb)}"


def count(n: int, singular: str, plural: str | None = None) -> str:
    """'1 result', '19,799 results'."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def plain(value: object) -> str:
    """A reported value as text: lists joined by commas, nothing as a dash."""
    if value is None or value == "" or value == []:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    return str(value)


def _unit(suffix: str, digits: int = 0):
    def write(value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return plain(value)
        return f"{value:,.{digits}f} {suffix}"

    return write


# Telemetry the agent reports, with the words and units pages use.
TELEMETRY = {
    "warmup_seconds": ("Warm-up image (not timed)", seconds),
    "average_power_w": ("Average power while generating", _unit("W")),
    "max_sm_clock_mhz": ("Highest GPU clock", _unit("MHz")),
    "max_memory_clock_mhz": ("Highest memory clock", _unit("MHz")),
    "max_temperature_c": ("Highest temperature", _unit("\u00b0C")),
    "throttle_reasons": ("Why clocks dropped", lambda v: plain(v) if v else "none reported"),
    "memory_sample_interval_ms": ("Memory sampled every", _unit("ms")),
}


def telemetry(values: dict) -> list[tuple[str, str]]:
    """(label, text) for each telemetry value: known ones in words and units, others by
    name, numbers to at most three decimals."""
    rows = []
    for name, (label, write) in TELEMETRY.items():
        if name in values:
            rows.append((label, write(values[name])))
    for name in sorted(set(values) - set(TELEMETRY)):
        value = values[name]
        if isinstance(value, float):
            value = f"{value:,.3f}".rstrip("0").rstrip(".")
        rows.append((name, plain(value)))
    return rows


COMPONENTS = ("transformer", "text_encoder", "vae")


def _by_component(values: object, words: dict[str, str] | None = None) -> str:
    """'transformer: bfloat16, text_encoder: float16' in pipeline order (the database
    keeps JSON keys in an order of its own)."""
    if not isinstance(values, dict) or not values:
        return MISSING
    order = [c for c in COMPONENTS if c in values] + sorted(set(values) - set(COMPONENTS))
    return ", ".join(f"{c}: {(words or {}).get(values[c], plain(values[c]))}" for c in order)


def kernels(values: dict) -> list[tuple[str, str]]:
    """(label, text) for what ran (a result's kernels section), the same rows for every
    runtime; what the runtime could not tell is left out."""
    if not values:
        return []
    rows = [("Read from", KERNEL_SOURCES.get(values.get("source") or "", MISSING))]
    if values.get("model_file"):
        rows.append(("Model file", str(values["model_file"])))
    rows.append(("Weights stored as", _by_component(values.get("weight_dtypes"))))
    rows.append(("Matmuls computed in", _by_component(values.get("compute_dtypes"))))
    if values.get("matmul_dtypes") is not None:
        rows.append(("Matmul input dtypes", plain(values["matmul_dtypes"])))
    fp8 = values.get("fp8_matmul")
    text = MISSING if fp8 is None else ("yes" if fp8 else "no")
    if values.get("matmuls") is not None:
        text += f" ({values.get('fp8_matmuls') or 0:,} of {values['matmuls']:,} matmul kernels)"
    rows.append(("FP8 matmuls", text))
    rows.append(("Attention kernel", plain(values.get("attention"))))
    loading = values.get("loading")
    if loading:
        text = _by_component(loading, KERNEL_LOADINGS)
        if values.get("offloaded_mb"):
            text += f"; {gib(values['offloaded_mb'])} left in system RAM"
        rows.append(("Model loading", text))
    return rows
