"""Running one image through ComfyUI: queue the Klein graph, follow it, and turn what
ComfyUI reports into a `scenario.Generation` or a failure.

`Execution.run(prompt, seed, label, on_stage)` queues the graph and returns the image's
`Generation`: ComfyUI's own seconds (the `execution_start` to `execution_success`
timestamps in `/history`), the agent's wall clock, per-stage seconds from the
`executing` messages on `/ws` (each also told to `on_stage`, so the scenario files memory
peaks under it), the loaders' seconds and a callable fetching the image.

ComfyUI writes the history entry and sends `execution_success` from different threads, so
either can reach the agent first: the entry may be there while the message still waits
on the socket behind others, or the message may arrive while `/history` still answers
`{}`. A run is therefore finished when the WebSocket says so, and its entry is then
fetched until it appears; `/history` alone decides only when there is no WebSocket.

Failures raise: `GenerationFailed` for what is evidence about the card (out of memory,
an exception while computing, ComfyUI dying or not finishing), KleinBenchError for what
the user must fix first (a damaged or wrong model file, mismatched files, a prompt
interrupted from ComfyUI's side, an image served from ComfyUI's cache).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
import uuid
from collections.abc import Callable
from queue import Empty
from typing import Any

from klein_bench.backends.comfyui import workflow
from klein_bench.backends.comfyui.client import (
    CLOSED,
    ComfyUIClient,
    ComfyUIError,
    ComfyUIHTTPError,
    ComfyUIUnreachable,
    Event,
    EventStream,
    PromptRejected,
)
from klein_bench.backends.comfyui.preflight import UPDATE_COMFYUI, Server
from klein_bench.backends.comfyui.process import process_exited
from klein_bench.contract.protocol import Protocol
from klein_bench.errors import KleinBenchError
from klein_bench.progress import Progress
from klein_bench.scenario import Failure, Generation, GenerationFailed

# A run may include loading ~12 GB of weights from a slow disk (the warm-up does).
RUN_TIMEOUT_S = 1800.0
# How often /history is polled without the WebSocket, and how often it is looked at
# with it (a guard against a message that never comes).
POLL_INTERVAL_S = 0.05
GUARD_INTERVAL_S = 1.0
# How long the end of a run may lag between /history and /ws before the agent gives up
# on the late one (a stalled event loop was seen to delay it by ~0.8 s).
END_GRACE_S = 10.0
END_MESSAGES = ("execution_success", "execution_error", "execution_interrupted")
# Exceptions that mean the model files do not fit together or this ComfyUI: a setup to
# fix, not a measurement.
_SETUP_ERRORS = (
    "mat1 and mat2 shapes cannot be multiplied",
    "size mismatch for",
    "error(s) in loading state_dict",
    "could not detect model type",
    "header too small",
    "invalid header",
    "incomplete metadata",
    "error while deserializing header",
    "no such file or directory",
)


def failed(status: str, stage: str, message: str) -> GenerationFailed:
    return GenerationFailed(Failure(status, message, stage))


class Execution:
    """ComfyUI's prompts for one benchmark, one at a time, as one client."""

    def __init__(
        self,
        client: ComfyUIClient,
        server: Server,
        protocol: Protocol,
        progress: Progress,
        *,
        width: int,
        height: int,
        pid: int | None = None,
        run_timeout: float = RUN_TIMEOUT_S,
        model_name: str = "FLUX.2 [klein]",
    ):
        assert server.files is not None
        self.client = client
        self.server = server
        self.files = server.files
        self.protocol = protocol
        self.progress = progress
        self.width = width
        self.height = height
        self.pid = pid
        self.run_timeout = run_timeout
        self.model_name = model_name
        self.client_id = uuid.uuid4().hex
        self.stream: EventStream | None = None
        self.notes: list[str] = []
        self.current: str | None = None
        self.on_stage: Callable[[str], None] = lambda stage: None

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            self.progress.note(message)

    def open(self) -> None:
        """Open the progress WebSocket (without it: poll /history, no stage times)."""
        try:
            self.stream = self.client.events(self.client_id)
        except ComfyUIError as exc:
            self.note(
                f"ComfyUI's progress WebSocket (/ws) is unavailable ({exc}), so stage times "
                "are left empty and the agent polls /history."
            )

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def interrupt(self) -> None:
        """Stop the benchmark's prompt, and only it, leaving ComfyUI idle."""
        prompt_id, self.current = self.current, None
        if prompt_id is None:
            return
        with contextlib.suppress(ComfyUIError):
            self.client.forget(prompt_id)
        with contextlib.suppress(ComfyUIError):
            self.client.interrupt(prompt_id)

    def _fetcher(self, images: list[dict[str, Any]]) -> Callable[[], Any]:
        """A callable returning the first image (PIL, RGB), or None with a note saying why:
        the scenario fetches only the one image the evidence is made of."""

        def fetch() -> Any:
            png = None
            if images:
                with contextlib.suppress(ComfyUIError):
                    png = self.client.view(
                        str(images[0].get("filename", "")),
                        str(images[0].get("subfolder", "")),
                        str(images[0].get("type", "temp")),
                    )
            if png is None:
                self.note(
                    "ComfyUI did not serve the first image back, so no image evidence is sent."
                )
                return None
            try:
                from PIL import Image

                import klein_bench.evidence  # noqa: F401 (needs NumPy)
            except ImportError:
                self.note(
                    "Pillow or NumPy is not installed, so no image evidence (perceptual hash "
                    'and thumbnail) is sent: install them with `pip install "klein-bench'
                    '[comfyui]"`.'
                )
                return None
            try:
                with Image.open(io.BytesIO(png)) as picture:
                    return picture.convert("RGB")
            except (OSError, ValueError):
                self.note("ComfyUI's first image could not be read, so no image evidence is sent.")
                return None

        return fetch

    # One image ------------------------------------------------------------------------

    def run(self, prompt: str, seed: int, label: str) -> Generation:
        graph = workflow.build_workflow(
            self.files,
            self.protocol,
            prompt=prompt,
            seed=seed,
            width=self.width,
            height=self.height,
        )
        started = time.perf_counter()
        try:
            prompt_id = self.client.queue_prompt(graph, client_id=self.client_id)
        except PromptRejected as exc:
            raise KleinBenchError(
                f"ComfyUI refused the benchmark graph ({exc}): update ComfyUI with "
                f"{UPDATE_COMFYUI}, then restart it."
            ) from exc
        except ComfyUIUnreachable:
            raise self._gone(label, "other") from None
        except ComfyUIHTTPError as exc:
            raise KleinBenchError(
                f"ComfyUI failed to queue the benchmark graph (HTTP {exc.status}): check its "
                "console, then run klein-bench again."
            ) from exc
        self.current = prompt_id
        try:
            generation = self._wait(prompt_id, graph, label, started)
        except KeyboardInterrupt:
            raise  # `current` stays set, so interrupt() can stop the prompt
        except BaseException:
            self.current = None
            raise
        self.current = None
        return generation

    def _wait(
        self, prompt_id: str, graph: dict[str, Any], label: str, started: float
    ) -> Generation:
        deadline = started + self.run_timeout
        spans: list[tuple[float, str | None]] = []  # (received, node id) of `executing`
        last_node: str | None = None
        ended: float | None = None  # when /ws said the prompt ended
        entry: dict[str, Any] | None = None
        entry_seen: float | None = None  # when /history first showed the entry
        steps_done = 0
        next_look = started
        while True:
            now = time.perf_counter()
            if now > deadline:
                raise failed(
                    "error",
                    self._stage_of(graph, last_node),
                    f"ComfyUI did not finish {label} within {self.run_timeout:g} seconds.",
                )
            event = self._next_event()
            if event is not None and event.data.get("prompt_id") == prompt_id:
                if event.type == "executing" and ended is None:
                    node = event.data.get("node")
                    if node is not None:
                        spans.append((event.received, str(node)))
                        last_node = str(node)
                        self.on_stage(self._stage_of(graph, last_node))
                elif event.type == "progress":
                    # Newer builds skip progress messages: move by the step it reports.
                    value = event.data.get("value")
                    if isinstance(value, int) and value > steps_done:
                        self.progress.advance(value - steps_done)
                        steps_done = value
                elif event.type in END_MESSAGES and ended is None:
                    ended = event.received
                    spans.append((event.received, None))
                    self.on_stage("other")
            if entry is None and (
                ended is not None or self.stream is None or time.perf_counter() >= next_look
            ):
                next_look = time.perf_counter() + (
                    POLL_INTERVAL_S
                    if self.stream is None or ended is not None
                    else GUARD_INTERVAL_S
                )
                try:
                    entry = self._history(prompt_id)
                except ComfyUIUnreachable:
                    raise self._gone(label, self._stage_of(graph, last_node)) from None
                except ComfyUIHTTPError as exc:
                    raise KleinBenchError(
                        f"ComfyUI answered {exc.path} with HTTP {exc.status} during {label}, "
                        "so the run cannot be followed: check ComfyUI's console, then run "
                        "klein-bench again."
                    ) from exc
                if entry is not None:
                    entry_seen = time.perf_counter()
            if entry is not None:
                if ended is not None:
                    return self._finish(entry, graph, label, ended - started, spans)
                if self.stream is None:
                    assert entry_seen is not None
                    return self._finish(entry, graph, label, entry_seen - started, [])
                assert entry_seen is not None
                if time.perf_counter() - entry_seen > END_GRACE_S:
                    self.note(
                        f"ComfyUI's WebSocket did not say that {label} ended, so its stage "
                        "times are left empty and the agent's clock stopped when /history "
                        "showed it."
                    )
                    return self._finish(entry, graph, label, entry_seen - started, [])
            if self.stream is None:
                time.sleep(POLL_INTERVAL_S)

    def _next_event(self) -> Event | None:
        if self.stream is None:
            return None
        try:
            event = self.stream.queue.get(timeout=POLL_INTERVAL_S / 5)
        except Empty:
            return None
        if event.type == CLOSED:
            # The server hung up the WebSocket; polling /history tells whether it is gone.
            self.stream = None
        return event

    def _history(self, prompt_id: str) -> dict[str, Any] | None:
        for attempt in range(3):
            try:
                return self.client.history(prompt_id)
            except ComfyUIUnreachable:
                if attempt == 2:
                    raise
                time.sleep(0.5)
        return None

    def _finish(
        self,
        entry: dict[str, Any],
        graph: dict[str, Any],
        label: str,
        wall: float,
        spans: list[tuple[float, str | None]],
    ) -> Generation:
        status = entry.get("status") or {}
        messages = {
            m[0]: m[1]
            for m in status.get("messages") or []
            if isinstance(m, list) and len(m) == 2 and isinstance(m[1], dict)
        }
        cached_ids = (messages.get("execution_cached") or {}).get("nodes") or []
        if "execution_error" in messages or "execution_interrupted" in messages:
            raise self._failure(label, messages, graph)
        if status.get("status_str") not in (None, "success"):
            raise failed(
                "error", "other", f"ComfyUI reported {label} as {status.get('status_str')!r}."
            )
        served = sorted(
            graph[str(n)]["class_type"] for n in cached_ids if workflow.is_per_image(graph, str(n))
        )
        if served:
            raise KleinBenchError(
                f"ComfyUI served part of {label} ({', '.join(served)}) from its cache, so it "
                "cannot be timed: restart ComfyUI without --cache-lru or --cache-ram, or run "
                f"at most {len(self.protocol.prompts)} timed runs."
            )
        seconds = round(wall, 6)
        start = (messages.get("execution_start") or {}).get("timestamp")
        end = (messages.get("execution_success") or {}).get("timestamp")
        if isinstance(start, (int, float)) and isinstance(end, (int, float)) and end >= start:
            seconds = (end - start) / 1000
        else:
            self.note(
                "This ComfyUI build does not timestamp its status messages, so the agent's "
                "clock timed the runs."
            )
        stage_seconds, load_seconds = stage_times(spans, graph)
        images = [
            image
            for output in (entry.get("outputs") or {}).values()
            if isinstance(output, dict)
            for image in output.get("images") or []
            if isinstance(image, dict)
        ]
        return Generation(
            seconds,
            dict(stage_seconds),
            image=self._fetcher(images),
            wall_seconds=round(wall, 6),
            load_seconds=load_seconds,
        )

    def _failure(
        self, label: str, messages: dict[str, Any], graph: dict[str, Any]
    ) -> GenerationFailed | KleinBenchError:
        error = messages.get("execution_error") or messages.get("execution_interrupted") or {}
        node_id = str(error.get("node_id", ""))
        node_type = str(error.get("node_type") or graph.get(node_id, {}).get("class_type") or "")
        stage = workflow.STAGE_BY_NODE_TYPE.get(node_type, "other")
        if "execution_interrupted" in messages:
            return KleinBenchError(
                f"ComfyUI's {label} was interrupted in {node_type} (someone pressed Cancel or "
                "called /interrupt), so it measured nothing: leave ComfyUI to the benchmark "
                "until it finishes, then run klein-bench again."
            )
        exception_type = str(error.get("exception_type") or "")
        text = str(error.get("exception_message") or "").strip()
        first_line = text.splitlines()[0].strip() if text else ""
        if is_oom(exception_type, text):
            return failed(
                "out_of_memory",
                stage,
                f"Out of memory in {node_type}: {exception_type} {first_line}".strip(),
            )
        detail = f"{exception_type}: {first_line}".strip(": ")
        if node_type in workflow.LOADER_TYPES:
            name = graph.get(node_id, {}).get("inputs", {})
            file = next((v for k, v in name.items() if k.endswith("_name")), "a model file")
            return KleinBenchError(
                f"ComfyUI could not load {file} ({detail}): the file is damaged, incomplete "
                f"or not the {self.model_name} file; download it again, then run klein-bench "
                "again."
            )
        if any(marker in text.lower() for marker in _SETUP_ERRORS):
            return KleinBenchError(
                f"ComfyUI failed in {node_type} ({detail}): the three model files do not "
                "belong together, or this ComfyUI cannot run them; check the files against "
                f"docs/comfyui.md and update ComfyUI with {UPDATE_COMFYUI}, then run "
                "klein-bench again."
            )
        return failed("error", stage, f"{node_type} failed: {detail}")

    def _gone(self, label: str, stage: str) -> GenerationFailed:
        if process_exited(self.pid):
            what = f"ComfyUI's process exited during {label}"
        else:
            what = f"ComfyUI stopped answering during {label}"
        return failed(
            "error",
            stage,
            f"{what} (a crash or the operating system killing it for lack of memory looks "
            "like this): see ComfyUI's console.",
        )

    @staticmethod
    def _stage_of(graph: dict[str, Any], node_id: str | None) -> str:
        if node_id is None or node_id not in graph:
            return "other"
        return workflow.STAGE_BY_NODE_TYPE.get(graph[node_id]["class_type"], "other")


def is_oom(exception_type: str, text: str) -> bool:
    lowered = text.lower()
    return (
        exception_type.endswith("OutOfMemoryError")
        or "out of memory" in lowered
        or "ran out of memory" in lowered
    )


def stage_times(
    spans: list[tuple[float, str | None]], graph: dict[str, Any]
) -> tuple[dict[str, float], float | None]:
    """Seconds per benchmark stage from the `executing` messages (each node runs until
    the next message; the last until the end message), and the loaders' seconds."""
    if not spans or spans[-1][1] is not None:
        return {}, None
    totals: dict[str, float] = {}
    load = 0.0
    saw_loader = False
    for (start, node_id), (end, _) in itertools.pairwise(spans):
        if node_id is None or node_id not in graph:
            continue
        class_type = graph[node_id]["class_type"]
        if class_type in workflow.LOADER_TYPES:
            load += end - start
            saw_loader = True
            continue
        stage = workflow.STAGE_BY_NODE_TYPE.get(class_type)
        if stage in ("text_encoding", "denoising", "vae_decode"):
            totals[stage] = totals.get(stage, 0.0) + end - start
    return {k: round(v, 6) for k, v in totals.items()}, round(load, 6) if saw_loader else None
