"""Deprecated spellings kept working for one minor version, with a `FutureWarning` that names the new one.

`renamed_arguments(since, old="new", ...)` maps an old keyword to its new name; `reordered_arguments(since,
old_order)` reads a call that passes every one of those arguments by position in their old order, warning, and
reads keywords (and the new order, once the warning is gone) as the new signature says; `warn(message)` is the
warning itself, for the spellings a decorator cannot map (a layer's old argument, in its config too).
"""

import functools
import warnings

_REMOVED = "and will be removed in the next minor version"


def warn(message):
    warnings.warn(message, FutureWarning, stacklevel=3)


def renamed_arguments(since, **renames):
    """A decorator: each keyword `old` given to the function is passed on as `renames[old]`, with a warning."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{function.__name__}() got both `{old}` (its old name) and `{new}`: pass `{new}`.")
                name = function.__name__
                warn(f"`{name}({old}=...)` is deprecated since keras-gumbel {since} {_REMOVED}: use `{new}=`.")
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate


def reordered_arguments(since, old_order):
    """A decorator: a call passing all of `old_order` by position is read in that (old) order, with a warning."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if len(args) == len(old_order) and not kwargs:
                keywords = ", ".join(f"{name}=..." for name in old_order)
                warn(
                    f"{function.__name__}'s arguments are now in the order of the other losses; a call passing them "
                    f"by position is read in the old order, ({', '.join(old_order)}), since keras-gumbel {since} "
                    f"{_REMOVED}. Pass them by keyword ({function.__name__}({keywords}))."
                )
                return function(**dict(zip(old_order, args)))
            return function(*args, **kwargs)

        return wrapper

    return decorate
