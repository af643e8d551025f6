"""Streaming a generation to Python, and stopping it.

The engine's generation loop (core/run/generate, Session) runs on a worker thread with the GIL released; it
hands each piece of text to a queue (taking the GIL for that call only). The calling thread reads the queue,
so it stays in Python: Ctrl-C raises KeyboardInterrupt there at once, even during a long prompt. On any way
out (the pieces ran out, the caller stopped iterating, an exception, KeyboardInterrupt) the engine is asked to
abort (it stops before its next token or prompt batch) and the worker is joined, so nothing runs on behind the
caller's back and the model is left consistent.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import weakref
from typing import Any, Callable
from collections.abc import Iterator, Sequence

# How often the reader wakes to let Python run signal handlers while no piece arrives (a simulated interrupt,
# _thread.interrupt_main(), does not wake a blocked wait).
_POLL_SECONDS = 0.1


# Workers still running, with their abort: at exit each is stopped and joined, so no engine thread is cut off
# in the middle of a call back into an interpreter that is shutting down (a generator that was never closed).
_running: weakref.WeakKeyDictionary[threading.Thread, Callable[[], None]] = weakref.WeakKeyDictionary()


def _stop(worker: threading.Thread, abort: Callable[[], None]) -> None:
    # Repeated: an abort that lands before the engine has started its generation is reset by that start.
    while worker.is_alive():
        abort()
        worker.join(0.05)
    _running.pop(worker, None)


@atexit.register
def _stop_all() -> None:
    for worker, abort in list(_running.items()):
        _stop(worker, abort)


class _Finished:
    __slots__ = ("result", "error")

    def __init__(self, result: Any, error: BaseException | None) -> None:
        self.result, self.error = result, error


def _next(items: queue.SimpleQueue[str | _Finished]) -> str | _Finished | None:
    # A helper, and no `continue` in the loop below: on CPython 3.11 and 3.12 a KeyboardInterrupt raised at a
    # loop's backward jump is looked up in the exception table by the instruction before the jump
    # (python/cpython#108214), so one that lands on a `continue` after an `except` or an `if` skipped the
    # enclosing `finally`, which must abort and join the worker (seen here on 3.11.2 and 3.11.7).
    try:
        return items.get(timeout=_POLL_SECONDS)
    except queue.Empty:
        return None


def stream(
    start: Callable[[Callable[[str], None]], Any],
    abort: Callable[[], None],
    done: Callable[[Any], None] = lambda result: None,
) -> Iterator[str]:
    """Runs ``start(on_piece)`` on a worker thread and yields each piece it passes to ``on_piece``.

    ``done(result)`` receives what ``start`` returned once it has finished (also when the caller stopped
    early); an exception of ``start`` is raised in the caller. ``abort()`` must make ``start`` return soon."""
    items: queue.SimpleQueue[str | _Finished] = queue.SimpleQueue()

    def work() -> None:
        try:
            items.put(_Finished(start(items.put), None))
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            items.put(_Finished(None, e))

    worker = threading.Thread(target=work, name="strata_llm generation", daemon=True)
    _running[worker] = abort
    worker.start()
    finished = False
    try:
        while not finished:
            item = _next(items)
            if isinstance(item, _Finished):
                finished = True
                if item.error is not None:
                    raise item.error
                done(item.result)
            elif item is not None:
                yield item
    finally:
        _stop(worker, abort)
        # Stopped early (the caller stopped iterating, Ctrl-C): the statistics of what did run still count.
        while not finished:
            try:
                item = items.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Finished):
                finished = True
                if item.error is None:
                    done(item.result)


def cut_at_stop(pieces: Iterator[str], stop: Sequence[str], on_stop: Callable[[], None]) -> Iterator[str]:
    """The pieces up to (not including) the first occurrence of any stop string; text that could still be the
    start of one is held back until it is decided. ``on_stop()`` is called when a stop string was found; the
    generation is then closed (aborted)."""
    stop = [s for s in stop if s]
    if not stop:
        yield from pieces
        return
    hold = max(len(s) for s in stop) - 1
    pending = ""
    with contextlib.closing(pieces):  # type: ignore[type-var]
        for piece in pieces:
            pending += piece
            hits = [i for i in (pending.find(s) for s in stop) if i >= 0]
            if hits:
                if min(hits) > 0:
                    yield pending[: min(hits)]
                on_stop()
                return
            if len(pending) > hold:
                cut = len(pending) - hold
                yield pending[:cut]
                pending = pending[cut:]
    if pending:
        yield pending
