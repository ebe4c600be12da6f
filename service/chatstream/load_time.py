"""A progress bar for a load of unknown length that learns how long it took the last time.

Loading a large model shows nothing for minutes. ``LoadTime`` times the load once, keeps the
duration in a small JSON file (``~/.cache/loadtime/<name>.json`` by default, as the seed's
``loadtime`` package did), and from then on draws a tqdm bar against that estimate::

    model = LoadTime(name=model_path, fn=lambda: AutoModelForCausalLM.from_pretrained(model_path))()

or around any block: ``with LoadTime(name=model_path): model = ...``. Unlike the seed, an error in
the load propagates (and is not recorded as a duration).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = ["LoadTime"]


class _PrintFile:
    """A file-like front for ``fn_print``, so tqdm draws through the caller's print function."""

    def __init__(self, fn_print: Callable[[str], Any]) -> None:
        self.fn_print = fn_print

    def write(self, text: str) -> None:
        if text:
            self.fn_print(text)

    def flush(self) -> None:
        return None


def hf_model_is_cached(model_path: str) -> bool:
    """Whether the HuggingFace hub cache already holds files for ``model_path`` (org/name)."""
    folder = "models--" + model_path.replace("/", "--")
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("TRANSFORMERS_CACHE")
    if not hub:
        home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
        hub = os.path.join(home, "hub")
    path = Path(hub) / folder
    return path.is_dir() and any(path.iterdir())


class LoadTime:
    """Run ``fn`` (or time a ``with`` block) behind a progress bar estimated from the last run.

    ``name`` names the stored duration (a model id is typical); ``message`` replaces the bar's
    ``Loading "<name>"`` label; ``pbar=False`` shows the times without the bar; ``hf=True`` says
    ``name`` is a hub model id: while it is not downloaded yet the hub's own download bars are
    shown instead and the (download-inflated) time is not kept. ``fn_print`` receives the drawn
    text instead of stderr; ``cache_dir`` and ``interval`` (seconds between redraws) are this
    package's additions.
    """

    def __init__(
        self,
        name: str = "",
        message: str | None = None,
        pbar: bool = True,
        dirname: str = "loadtime",
        hf: bool = False,
        fn: Callable[[], Any] | None = None,
        fn_print: Callable[[str], Any] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        interval: float = 0.5,
    ) -> None:
        self.name = name
        self.message = message
        self.show_percentage = pbar
        self.dirname = dirname
        self.hf = hf
        self.fn = fn
        self.fn_print = fn_print
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.interval = interval
        self.start_time: float | None = None
        self.elapsed_time = -1.0
        self.is_model_cached = hf_model_is_cached(name) if hf else True
        self.stored_data: dict[str, Any] = self.load_dict_from_json() or {"total_time": None}
        self._bar: tqdm | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the stored duration ---------------------------------------------------------------------
    @property
    def file_path(self) -> Path:
        base = self.cache_dir
        if base is None:
            base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        safe = re.sub(r"[\\/:]", "_", self.name) or "_"
        return base / self.dirname / f"{safe}.json"

    def load_dict_from_json(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.file_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save_dict_to_json(self, data_dict: dict[str, Any]) -> None:
        path = self.file_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data_dict), encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a file

    def clear_stored_data(self) -> None:
        """Forget the learned duration: the next run records it again."""
        self.stored_data["total_time"] = None
        self.save_dict_to_json(self.stored_data)

    @property
    def expected_time(self) -> float | None:
        total = self.stored_data.get("total_time")
        return float(total) if isinstance(total, int | float) and total > 0 else None

    # --- running -------------------------------------------------------------------------------
    def __call__(self) -> Any:
        return self.start()

    def start(self) -> Any:
        """Run ``fn`` behind the bar and return what it returns."""
        if self.fn is None:
            raise TypeError("fn not set: pass fn=callable, or use LoadTime as a context manager")
        fn, self.fn = self.fn, None
        with self:
            return fn()

    def __enter__(self) -> LoadTime:
        self.start_time = time.monotonic()
        self._bar = self._open_bar()
        if self._bar is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._redraw, name="loadtime", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.elapsed_time = time.monotonic() - (self.start_time or time.monotonic())
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._bar is not None:
            self._finish_bar(self._bar, completed=exc_type is None)
            self._bar = None
        if exc_type is None and self.is_model_cached:
            self.stored_data["total_time"] = self.elapsed_time
            self.save_dict_to_json(self.stored_data)

    # --- drawing -------------------------------------------------------------------------------
    def _label(self) -> str:
        return self.message if self.message is not None else f'Loading "{self.name}" ...'

    def _open_bar(self) -> tqdm | None:
        if self.hf and not self.is_model_cached:
            return None  # the hub draws its download bars; two bars at once garble both
        file = _PrintFile(self.fn_print) if self.fn_print is not None else None
        total = self.expected_time
        if total is None:
            fmt = "{desc} {elapsed} (now recording the loading time)"
        elif self.show_percentage:
            fmt = "{desc} {elapsed}/" + _clock(total) + " |{bar:20}| {percentage:3.0f}%"
        else:
            fmt = "{desc} {elapsed}/" + _clock(total)
        return tqdm(total=total, desc=self._label(), bar_format=fmt, file=file, leave=True, mininterval=0)

    def _redraw(self) -> None:
        assert self._bar is not None and self.start_time is not None
        while not self._stop.wait(self.interval):
            elapsed = time.monotonic() - self.start_time
            total = self._bar.total
            # a load slower than last time holds just short of the end instead of overflowing it
            self._bar.n = min(elapsed, total * 0.99) if total else elapsed
            self._bar.refresh()

    def _finish_bar(self, bar: tqdm, *, completed: bool) -> None:
        if completed:
            bar.n = bar.total if bar.total else self.elapsed_time
            bar.refresh()
        bar.close()


def _clock(seconds: float) -> str:
    """``mm:ss`` (or ``h:mm:ss``), as tqdm writes ``{elapsed}``."""
    return tqdm.format_interval(seconds)
