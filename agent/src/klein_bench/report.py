"""Rich tables for the terminal: a result, the doctor's report, the local history."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from klein_bench import result
from klein_bench.contract.figures import KERNEL_SOURCES, OUTCOMES, PHASES
from klein_bench.contract.models import MODELS
from klein_bench.doctor import Report

_LEVEL_STYLE = {"ok": "green", "info": "cyan", "warning": "yellow", "problem": "red"}
_LEVEL_MARK = {"ok": "✓", "info": "i", "warning": "!", "problem": "✗"}
_VERDICT_STYLE = {
    "fits": "green",
    "tight": "yellow",
    "does not fit": "red",
    "not supported": "red",
}
STAGE_LABELS = {
    "load": "model load",
    "warmup": "warm-up",
    "text_encoding": "text encoding",
    "denoising": "denoising",
    "vae_decode": "VAE decode",
    "other": "the run",
}


def _row(table: Table, *values: Any) -> None:
    """Add a row whose text is shown as is: names like "FLUX.2 [klein]" are not markup."""
    table.add_row(*(Text(value) if isinstance(value, str) else value for value in values))


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def _mb(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1024:.2f} GiB ({value:,.0f} MiB)"


def _number(value: float | None, unit: str, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f} {unit}"


def oom_hint(payload: dict[str, Any]) -> str | None:
    """What to try after a configuration ran out of memory."""
    if payload["outcome"]["status"] != "out_of_memory":
        return None
    preset = payload["configuration"].get("preset")
    if payload["configuration"]["runtime"] != "diffusers":
        return "It does not fit this way: try a lower-memory setup, then submit both results."
    others = {
        "bf16-resident": "--preset bf16-model-offload or --preset fp8-storage",
        "fp8-storage": "--preset bf16-model-offload",
        "bf16-model-offload": "closing programs that use the GPU or system RAM",
    }.get(preset or "", "another preset")
    return (
        f"It does not fit in this configuration: try {others}. The out-of-memory result "
        "is evidence worth submitting too."
    )


def result_table(payload: dict[str, Any]) -> Table:
    config = payload["configuration"]
    gpu = payload["gpu"]
    outcome = payload["outcome"]
    memory = payload.get("memory") or {}
    timings = payload["timings"]
    energy = payload.get("energy") or {}
    telemetry = payload.get("telemetry") or {}
    summary = result.stats(payload)
    model = MODELS.get(payload["model"])
    name = model.name if model else payload["model"]
    if payload.get("synthetic"):
        name += " (synthetic: random weights)"

    table = Table(title="klein-bench result", show_header=False, title_justify="left")
    table.add_column("measure", style="bold")
    table.add_column("value", overflow="fold")
    _row(table, "Model", name)
    _row(
        table,
        "Configuration",
        f"{config.get('preset') or config['precision'] + ' ' + config['offload']} "
        f"({config['runtime']}, {config['width']}x{config['height']}, {config['steps']} steps)"
        + (f", {config['fp8_method']}" if config.get("fp8_method") else ""),
    )
    _row(table, "GPU", gpu.get("name") or "CPU (no GPU)")
    if outcome["status"] == "success":
        status = Text("success", style="green")
    else:
        label = OUTCOMES.get(outcome["status"], outcome["status"])
        stage = STAGE_LABELS.get(outcome["stage"] or "", "an unknown stage")
        phase = PHASES.get(outcome.get("phase") or "")
        status = Text(f"{label} during {stage}" + (f" ({phase})" if phase else ""), style="red")
    _row(table, "Outcome", status)
    if outcome.get("message") and outcome["status"] != "success":
        _row(table, "Message", outcome["message"][:300])
    if summary:
        _row(
            table,
            "Seconds per image",
            Text(f"{summary['median']:.3f} s median over {summary['n']} runs", style="bold"),
        )
        _row(table, "p10 / p90", f"{summary['p10']:.3f} s / {summary['p90']:.3f} s")
        _row(table, "stdev / CV", f"{summary['stdev']:.3f} s / {summary['cv'] * 100:.1f} %")
        _row(table, "Text encoding (median)", _seconds(summary["text_encoding"]))
        _row(table, "Denoising (median)", _seconds(summary["denoising"]))
        _row(table, "VAE decode (median)", _seconds(summary["vae_decode"]))
    _row(table, "Model load", _seconds(timings.get("load_seconds")))
    _row(table, "Warm-up (not timed)", _seconds(timings.get("warmup_seconds")))
    source = memory.get("vram_source")
    where = ", ".join(
        part
        for part in (
            PHASES.get(memory.get("peak_phase") or ""),
            STAGE_LABELS.get(memory.get("peak_stage") or ""),
        )
        if part
    )
    _row(
        table,
        Text("Peak VRAM (headline)", style="bold"),
        _mb(memory.get("peak_vram_mb"))
        + (f" from {source}" if source else "")
        + (f", during {where}" if where else ""),
    )
    for phase, peaks in (memory.get("phases") or {}).items():
        if peaks and peaks.get("peak_vram_mb") is not None:
            _row(table, f"  peak in {PHASES.get(phase, phase)}", _mb(peaks["peak_vram_mb"]))
    _row(table, "Peak allocated (torch)", _mb(memory.get("peak_allocated_mb")))
    _row(table, "Peak reserved (torch)", _mb(memory.get("peak_reserved_mb")))
    _row(table, "Peak process (NVML)", _mb(memory.get("peak_process_mb")))
    _row(table, "Peak device (NVML)", _mb(memory.get("peak_device_mb")))
    _row(table, "Device before loading", _mb(memory.get("baseline_device_mb")))
    _row(
        table,
        "Peak RSS / system RAM",
        f"{_mb(memory.get('peak_rss_mb'))} / {_mb(memory.get('system_ram_mb'))}",
    )
    if config["offload"] != "none":
        link = (
            f"PCIe Gen{gpu['pcie_generation']} x{gpu['pcie_width']}"
            if gpu.get("pcie_generation")
            else "an unknown PCIe link"
        )
        _row(
            table,
            "Offload",
            f"weights cross {link} every image, so this figure measures the host's link "
            "and RAM as much as the card",
        )
    kernels = payload.get("kernels") or {}
    if kernels:
        _kernel_rows(table, kernels)
    _row(
        table,
        "Energy per image",
        _number(energy.get("joules_per_image"), "J", 1)
        + (
            f" (average {energy['average_power_w']:.0f} W)" if energy.get("average_power_w") else ""
        ),
    )
    if telemetry:
        _row(
            table,
            "Max clocks / temperature",
            f"SM {_number(telemetry.get('max_sm_clock_mhz'), 'MHz')}, memory "
            f"{_number(telemetry.get('max_memory_clock_mhz'), 'MHz')}, "
            f"{_number(telemetry.get('max_temperature_c'), '°C')}",
        )
        _row(
            table,
            "Clock limits while timing",
            ", ".join(telemetry.get("throttle_reasons") or []) or "none",
        )
        share = telemetry.get("power_limit_share")
        labels = [name for name in ("capped", "throttled") if telemetry.get(name)]
        _row(
            table,
            "Power limit",
            ("—" if share is None else f"{share * 100:.0f} % of the card's default")
            + (f" — {' and '.join(labels)}" if labels else ""),
        )
    evidence = payload.get("evidence") or {}
    if evidence.get("phash"):
        _row(table, "Image pHash", evidence["phash"])
    return table


def print_result(console: Console, payload: dict[str, Any]) -> None:
    console.print(result_table(payload))
    hint = oom_hint(payload)
    if hint:
        console.print(f"[yellow]{escape(hint)}[/]", soft_wrap=True)


def doctor_tables(report: Report) -> list[Any]:
    parts: list[Any] = []
    if report.gpus:
        gpus = Table(title="GPUs (NVML)", title_justify="left")
        for column in (
            "#",
            "name",
            "VRAM",
            "in use",
            "compute",
            "display",
            "power limit",
            "PCIe link",
        ):
            gpus.add_column(column)
        for info in report.gpus:
            pcie = "—"
            if info.pcie_generation:
                pcie = f"Gen{info.pcie_generation} x{info.pcie_width}"
                if info.pcie_max_generation:
                    pcie += f" (max Gen{info.pcie_max_generation} x{info.pcie_max_width})"
            _row(
                gpus,
                str(info.index),
                info.name,
                _number((info.memory_total_mb or 0) / 1024, "GiB", 1),
                _number((info.memory_used_mb or 0) / 1024, "GiB", 1),
                f"{info.compute_capability} ({info.sm})" if info.compute_capability else "—",
                {True: "yes", False: "no", None: "unknown"}[info.drives_display],
                _number(info.power_limit_w, "W"),
                pcie,
            )
        parts.append(gpus)

    software = Table(title="Software and system", title_justify="left", show_header=False)
    software.add_column("what", style="bold")
    software.add_column("value")
    _row(software, "NVIDIA driver", f"{report.driver or '—'} (CUDA {report.cuda_driver or '—'})")
    torch = report.torch
    if torch.installed:
        cuda = f"CUDA {torch.cuda}" if torch.cuda else "CPU-only build"
        _row(software, "torch", f"{torch.version} ({cuda})")
        if torch.arch_list:
            _row(software, "torch GPU kernels", " ".join(torch.arch_list))
    else:
        _row(software, "torch", "not installed")
    _row(software, "diffusers", report.diffusers or "not installed")
    _row(software, "transformers", report.transformers or "not installed")
    _row(software, "System RAM", f"{report.system_ram_gb:.1f} GiB")
    _row(
        software,
        "Free disk",
        f"{report.free_disk_gb:.1f} GiB in {report.disk_path}"
        if report.free_disk_gb is not None
        else "—",
    )
    spec = report.spec
    if report.weights is not None:
        state = "complete" if report.weights.complete else "incomplete"
        revision = f", revision {report.weights.revision}" if report.weights.revision else ""
        _row(software, f"{spec.name} weights", f"{report.weights.path} ({state}{revision})")
    elif spec.hf is not None:
        _row(software, f"{spec.name} weights", "not found")
    parts.append(software)

    if report.fits:
        fits = Table(
            title=Text(
                f"Presets for {spec.name} at {spec.width}x{spec.height} (estimates from the "
                "architecture)"
            ),
            title_justify="left",
        )
        fits.add_column("GPU")
        fits.add_column("preset")
        fits.add_column("needs")
        fits.add_column("verdict")
        fits.add_column("why")
        for index, entries in report.fits.items():
            for fit in entries:
                _row(
                    fits,
                    str(index),
                    fit.preset,
                    f"~{fit.needs_gb:.1f} GiB",
                    Text(fit.verdict, style=_VERDICT_STYLE[fit.verdict]),
                    fit.note,
                )
        parts.append(fits)
    return parts


def _per_component(values: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (values or {}).items()) or "—"


def _kernel_rows(table: Table, kernels: dict[str, Any]) -> None:
    """What ran (the kernels section), as the runtime observed or reported it."""
    if kernels.get("model_file"):
        _row(table, "Model file", kernels["model_file"])
    _row(table, "Weights stored as", _per_component(kernels.get("weight_dtypes")))
    computed = _per_component(kernels.get("compute_dtypes"))
    if computed == "—":
        computed = ", ".join(kernels.get("matmul_dtypes") or []) or "—"
    if kernels.get("fp8_matmuls"):
        computed += f" ({kernels['fp8_matmuls']} of {kernels['matmuls']} FP8 kernels)"
    elif kernels.get("fp8_matmul"):
        computed += " (FP8 matmuls)"
    _row(table, "Matmuls ran in", computed)
    _row(table, "Attention kernel", kernels.get("attention") or "—")
    if kernels.get("loading"):
        loading = _per_component(kernels["loading"])
        if kernels.get("offloaded_mb"):
            loading += f"; {kernels['offloaded_mb'] / 1024:.1f} GiB left in system RAM"
        _row(table, "Model loading", loading)
    if kernels.get("source") and kernels["source"] != "observed":
        _row(table, "What ran, read from", KERNEL_SOURCES.get(kernels["source"], kernels["source"]))


def print_doctor(console: Console, report: Report) -> None:
    for part in doctor_tables(report):
        console.print(part)
        console.print()
    console.print("[bold]Findings[/]")
    for finding in report.findings:
        style = _LEVEL_STYLE[finding.level]
        console.print(
            f"[{style}]{_LEVEL_MARK[finding.level]}[/] [bold]{escape(finding.topic)}[/]: "
            f"{escape(finding.text)}",
            soft_wrap=True,
        )
        if finding.fix:
            console.print(f"    fix: {escape(finding.fix)}", style=style, soft_wrap=True)
    problems = len(report.problems)
    console.print()
    if problems:
        console.print(f"[red]{problems} problem{'s' if problems > 1 else ''} to fix.[/]")
    elif report.needs_diffusers and not report.gpu_usable:
        console.print(
            "[yellow]No NVIDIA GPU is usable here: only --model klein-tiny-random runs (on "
            "the CPU).[/]"
        )
    else:
        console.print("[green]No problems found.[/]")


def history_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(title="Results on this machine", title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("date (UTC)", no_wrap=True)
    table.add_column("model and preset", overflow="fold")
    table.add_column("GPU", overflow="fold")
    table.add_column("outcome", overflow="fold")
    table.add_column("s/image", justify="right", no_wrap=True)
    table.add_column("status", overflow="fold")
    for entry in entries:
        outcome = entry.get("outcome") or "—"
        if outcome != "success" and entry.get("stage"):
            outcome += f" ({STAGE_LABELS.get(entry['stage'], entry['stage'])})"
        model = entry.get("model") or "—"
        if entry.get("synthetic"):
            model += " (synthetic)"
        status = entry.get("status") or "—"
        if entry.get("result_id") is not None:
            status += f" as {entry['result_id']}"
        median = entry.get("median_seconds")
        _row(
            table,
            entry.get("local_id", "—"),
            (entry.get("created_at") or "")[:10],
            f"{model}\n{entry.get('preset') or entry.get('runtime') or '—'}",
            entry.get("gpu") or "—",
            outcome,
            "—" if median is None else f"{median:.3f}",
            status,
        )
    return table
