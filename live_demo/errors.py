"""Exceptions raised at the live_demo package boundary (torch-free)."""


class LiveDemoError(ValueError):
    """Base class: every message says what went wrong and what to do about it."""


class EmptyPromptError(LiveDemoError):
    """The prompt was empty or whitespace only."""


class PromptTooLongError(LiveDemoError):
    """The prompt exceeds the configured token cap."""


class ModelLoadError(LiveDemoError):
    """A model id/path is unknown, unreachable or not a causal LM."""


class TokenizerMismatchError(LiveDemoError):
    """The draft model does not share the target's tokenizer."""


class OutOfMemoryError(LiveDemoError):
    """The device ran out of memory during a run."""


class BadInputError(LiveDemoError):
    """An argument of the wrong type or out of range (a list where one text is expected, a bool for a count)."""


class RunCancelled(LiveDemoError):
    """The user pressed Stop; partial results may be attached."""


class BusyError(LiveDemoError):
    """Another heavy run holds the process-wide lock."""


# What one method, drafter or benchmark section may raise on a machine whose libraries or kernels differ from the
# developer's (a GPU library's API change, a missing kernel). The benchmark and run_quantization(keep_going=True)
# record these and go on, so one failing path does not lose every other figure of a run.
RECOVERABLE_ERRORS = (RuntimeError, ValueError, ImportError, NotImplementedError, TypeError, AttributeError, KeyError)


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """`value` when it is a whole number (not a bool) in [low, high]; else BadInputError naming the range."""
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise BadInputError(f"{name} must be a whole number {span}, got {value!r}")
    return value


def check_text(name: str, value) -> str:
    """`value` when it is one string. A list or tuple (a batch) is refused with advice; other types too."""
    if isinstance(value, (list, tuple)):
        raise BadInputError(f"{name} must be one text, got a {type(value).__name__} of {len(value)}; the live demo "
                            "runs one input at a time: call it once per item")
    if not isinstance(value, str):
        raise BadInputError(f"{name} must be a text (str), got {type(value).__name__}")
    return value
