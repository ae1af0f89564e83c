"""What an object keeps alive, for the memory tests: everything it reaches, each object once.

Types, modules and functions are shared code, not a series' or a driver's state (a function
reaches its module's globals, and from there everything), so the walk does not enter them. A
numpy array's referents are its base only (its buffer is not an object): a view reaches the
array it keeps alive.
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

SHARED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type(None))


def reachable(roots: Iterable[Any]) -> Iterator[Any]:
    """Every object ``roots`` reach (gc referents), each once, shared code left out."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, SHARED):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, np.ndarray):
            if obj.base is not None:
                stack.append(obj.base)
            continue
        stack.extend(gc.get_referents(obj))


def walked_bytes(roots: Iterable[Any]) -> int:
    """Bytes held by ``roots`` and what they reach (sys.getsizeof; numpy buffers included).

    Not for pandas objects: a Series' or an Index's ``sys.getsizeof`` is its
    ``memory_usage(deep=True)``, data included, so their arrays would count twice or more
    (:func:`array_bytes` counts each buffer once)."""
    return sum(sys.getsizeof(obj) for obj in reachable(roots))


def array_bytes(roots: Iterable[Any]) -> int:
    """Bytes of the numpy buffers ``roots`` reach, each buffer once (a view counts nothing of
    its own: it reaches the array that owns the buffer)."""
    return sum(
        obj.nbytes
        for obj in reachable(roots)
        if isinstance(obj, np.ndarray) and obj.base is None and obj.flags.owndata
    )
