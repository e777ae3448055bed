"""The APA benchmark (``../shared/benchmark-protocol.md``): how many grading actions the
product's grouping leaves an instructor who knows every gold grade.

- :mod:`grouper.evaluation.apa`: the arithmetic of the protocol, from gold labels alone;
- :mod:`grouper.evaluation.oracle`: the oracle instructor, grading through the edit log;
- :mod:`grouper.evaluation.runner`: every question of answer files, per corpus and split.
"""

from typing import Any

from grouper.evaluation.apa import MODES, ReviewCount, count_review, exact_text_key, floor_apa, majority_label
from grouper.evaluation.oracle import ORACLE_AUTHOR, OracleError, review_question

# The runner embeds answers, so it imports torch: loaded on first use, so that a command that
# only needs the protocol's constants (the CLI's parser) does not pay for it.
_RUNNER = ("QuestionResult", "SplitResult", "evaluate_questions", "summarise")


def __getattr__(name: str) -> Any:
    if name in _RUNNER:
        from grouper.evaluation import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'grouper.evaluation' has no attribute {name!r}")

__all__ = [
    "MODES",
    "ORACLE_AUTHOR",
    "OracleError",
    "QuestionResult",
    "ReviewCount",
    "SplitResult",
    "count_review",
    "evaluate_questions",
    "exact_text_key",
    "floor_apa",
    "majority_label",
    "review_question",
    "summarise",
]
