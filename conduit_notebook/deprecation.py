"""Old spellings of arguments, kept one release with a :class:`DeprecationWarning` (the API's
argument convention: docs/api.md, "Conventions").

>>> @renamed_arguments(start="since", end="until")
... @keyword_only_after("runs", "by")
... def summarize(runs, *, by=None, since=None, until=None): ...

``summarize(runs, "agent")`` and ``summarize(runs, start=...)`` still work and warn, naming the
new spelling; the signature :func:`inspect.signature` shows is the new one.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["keyword_only_after", "renamed_arguments"]

F = TypeVar("F", bound=Callable[..., Any])


def _warn(function: Callable[..., Any], message: str) -> None:
    warnings.warn(f"{function.__name__}: {message}; the old spelling goes in the next release",
                  DeprecationWarning, stacklevel=3)


def renamed_arguments(**renamed: str) -> Callable[[F], F]:
    """Accept each old keyword (``old="new"``) as the new one, with a DeprecationWarning; both
    given is a TypeError naming them."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{function.__name__}() got both {old}= and {new}=: pass {new}= only")
                    _warn(function, f"{old}= is now {new}=")
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def keyword_only_after(*positional: str, moved: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Arguments after ``positional`` are keyword-only now; ``moved`` names the ones that used to
    be positional, in their old order: passed positionally they still work, with a warning."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        taken = [p for p in signature.parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert [p.name for p in taken] == list(positional), (function.__name__, [p.name for p in taken])
        assert all(signature.parameters[m].kind is inspect.Parameter.KEYWORD_ONLY for m in moved), moved

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > len(positional):
                extra = args[len(positional):]
                if len(extra) > len(moved):
                    raise TypeError(f"{function.__name__}() takes {len(positional)} positional argument(s) "
                                    f"({', '.join(positional)}); pass the others by name")
                names = moved[:len(extra)]
                for name in names:
                    if name in kwargs:
                        raise TypeError(f"{function.__name__}() got {name} twice: by position and by name")
                _warn(function, "pass " + ", ".join(f"{n}=" for n in names) + " by name")
                kwargs.update(zip(names, extra, strict=True))
                args = args[:len(positional)]
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
