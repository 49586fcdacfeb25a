"""Exceptions the engine raises.

A bad model *answer* is never an exception: it becomes an ``AnalysisResult`` with
``ok=False``. Exceptions are for conditions where no frame of the batch can be analysed
and the caller should act (retry later, shrink the batch, fix the configuration).
"""


class AnalyzerError(Exception):
    """Base class of every engine error."""


class AnalyzerUnavailable(AnalyzerError):
    """The backend cannot serve requests right now (model files missing, model server
    unreachable or refusing us). Retrying later, or fixing the configuration named in the
    message, is the remedy."""


class OutOfMemory(AnalyzerError):
    """The accelerator ran out of memory even for a batch of one frame.

    ``analyze`` already halves the batch on CUDA OOM and retries down to a batch of one
    (see ``backends/transformers_backend.py``), so when this escapes, shrinking the batch
    will not help: free GPU memory or use a smaller model / image size.
    """
