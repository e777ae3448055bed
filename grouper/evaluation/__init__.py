"""The APA benchmark (``../shared/benchmark-protocol.md``): how many grading actions the
product's grouping leaves an instructor who knows every gold grade.

- :mod:`grouper.evaluation.apa`: the arithmetic of the protocol, from gold labels alone;
- :mod:`grouper.evaluation.oracle`: the oracle instructor, grading through the edit log;
- :mod:`grouper.evaluation.runner`: every question of answer files, per corpus and split.
"""

from grouper.evaluation.apa import ReviewCount, count_review, exact_text_key, floor_apa, majority_label
from grouper.evaluation.oracle import ORACLE_AUTHOR, OracleError, review_question
from grouper.evaluation.runner import MODES, QuestionResult, SplitResult, evaluate_questions, summarise

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
