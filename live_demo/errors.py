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


class RunCancelled(LiveDemoError):
    """The user pressed Stop; partial results may be attached."""


class BusyError(LiveDemoError):
    """Another heavy run holds the process-wide lock."""


# What one method, drafter or benchmark section may raise on a machine whose libraries or kernels differ from the
# developer's (a GPU library's API change, a missing kernel). The benchmark and run_quantization(keep_going=True)
# record these and go on, so one failing path does not lose every other figure of a run.
RECOVERABLE_ERRORS = (RuntimeError, ValueError, ImportError, NotImplementedError, TypeError, AttributeError, KeyError)
