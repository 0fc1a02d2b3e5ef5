# Type stub for Houdini's hdefereval module (graphical Houdini only; types-houdini ships none).
# Signatures as documented in the module's docstrings: callables run on the main thread when idle.
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")

def executeDeferred(code: Callable[..., object] | str, *args: Any, **kwargs: Any) -> None: ...
def executeDeferredAfterWaiting(
    code: Callable[..., object] | str, num_waits: int, *args: Any, **kwargs: Any
) -> None: ...
def executeInMainThreadWithResult(code: Callable[..., _T], *args: Any, **kwargs: Any) -> _T: ...
