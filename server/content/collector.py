"""Python's cyclic garbage collector, paused while content loads.

A city's load creates millions of container objects that live until it ends (parsed records, documents,
postings), and the collector's full passes walk all of them again each time their number grows by a quarter:
reading 50,000 merchants' YAML took twice as long with it running, and deriving and writing them a third
longer.  The load makes few reference cycles (freed objects go by reference counting as ever), and those
it makes are collected once it is done.  The pause is process-wide: it suits the entry points that load
before anything else runs in the process (the web app's start, `python -m server`'s first run, the `load`
command); a reload inside a process that serves requests would run them with the collector off too.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def paused() -> Iterator[None]:
    """The collector off until the last of the pauses entered (in any thread) has ended; left as it was then."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
