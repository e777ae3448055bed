"""The final answer of a numeric question ("19.6 m/s"), and whether a question is numeric.

On a question whose answers are numbers ("How fast is it moving when it lands?"), what
decides the grade is the final value and its unit: "19.6 m/s" is right, "19.6" lacks the unit,
"19.6 m/s^2" has the wrong one, "9.8 m/s" is a slip. A sentence encoder sees these as nearly the
same text, and the reference signals see a worked solution ("v = g t = 9.8 m/s^2 x 2.0 s =
19.6 m/s") as sharing words with every one of them. Grouping answers that state the same
quantity is what a grader would do by eye, and what makes each group one grade
(:func:`grouper.clustering.group_embeddings`, ``docs/grouping.md``).

Putting two answers a grader would grade differently in one group is the costly mistake
(every exception is a move, and a grade given to the group lands on all of them); splitting
answers of one grade in two costs one action. So an answer gets a key only when it is *just a
quantity*, and the key keeps everything it states:

- before the final value there may be only filler ("about", "the answer is"), variable names
  of one or two letters, operators and the values of an ``=`` chain ("v = gt = 9.8*2 =
  19.6 m/s"); a word like "yes", "not" or "falls", a second statement ("x = 2, y = 3"), or an
  algebraic term ("2x + 1") means no key;
- the key is every stand-alone value written (the working too, so "v = 19.6 m/s at t = 2 s"
  and "v = 9.8 m/s at t = 2 s" differ) and everything written after the final value, as the
  unit ("m/s squared" and "m/s downwards" are not "m/s");
- fractions ("3/2"), powers of a number ("2^32", "10**8") and a power of ten that NFKC
  flattened ("3 x 10⁸" reads "3 x 108") mean no key: their last digits are no value.

A value that stands alone is not an exponent (``m/s^2``, ``ms-1``) nor a digit glued to a
letter (``x2``, ``t2``); "19.6", "19.60" and "19,6" are one value (kept exactly, as decimals),
"1,000" is a thousand, "3 x 10^8" and "1.5e3" are read whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import numpy as np

__all__ = [
    "NUMERIC_SHARE",
    "QUANTITY_CLASS_SIZE",
    "Quantity",
    "final_quantity",
    "is_numeric_question",
    "is_quantity_answer",
    "quantity_classes",
    "quantity_title",
]

#: A question is numeric when at least this share of its non-blank answers are quantity
#: answers. On the three benchmark corpora no question goes above 0.21 (answers like "3." or
#: "40 meters" to explanation questions); a question asking for a number has most of its
#: answers there (0.83 on the sample ball-drop question).
NUMERIC_SHARE = 0.6

#: Fewest answers stating one quantity that the re-cut of the grade adaptation keeps
#: together and that late answers are placed by: the grouping's smallest group
#: (``GroupingSettings.min_cluster_size``).
QUANTITY_CLASS_SIZE = 3

#: At most this many words of four or more letters after the final value, for an answer to
#: count towards a numeric question ("19.6 meters per second" does, an explanation does not).
_UNIT_PROSE_WORDS = 3

_SIGNS = str.maketrans({"−": "-", "–": "-", "—": "-", "×": "x", "·": "*"})
# A value: a sign, digits with decimal point or comma (a comma before exactly three digits
# after a non-zero lead separates thousands), and an optional power of ten ("3 x 10^8",
# "1.5e3"). The look-behinds keep out exponents ("^2", "s-1") and digits glued to a letter
# ("x2"); the look-ahead keeps out ordinals ("2nd").
_VALUE = re.compile(
    r"(?<![\w^.,])(?<![\w^][-+])(?P<sign>[-+]\s?)?"
    r"(?P<mantissa>[1-9]\d{0,2}(?:,\d{3})+(?![\d,])(?:\.\d+)?|\d+(?:[.,]\d+)?|[.,]\d+)"
    r"(?:\s*[x*]\s*10\s*\^\s*(?P<power>[-+]?\d+)|e(?P<e>[-+]?\d+))?"
    r"(?!(?:st|nd|rd|th)\b)"
)
# What makes values no answer, looked for with each value written as "#": a fraction or
# division, a power of a number ("2^32", "10**8"), a value with a unit before the final one
# in the same statement ("19.6 m/s (3 s.f.)"); and, in the text itself, a power of ten whose
# exponent NFKC flattened into digits ("3 x 108", "x 10-19").
_NOT_A_VALUE = re.compile(r"#\s*/\s*[#.]|#\s*(?:\^|\*\*)")
# A short name between a value and "=": "x = 2 y = 3" (a second assignment) or "2.0 s = 19.6".
_RESTART = re.compile(r"#\s*([^\W\d_]{1,2})\s*=")
_UNIT_THEN_VALUE = re.compile(r"#\s*[^\W\d_][^=]*$")
_FLAT_POWER = re.compile(r"[x*]\s*10(?:\d|\s*-\s*\d)")
_SUPERSCRIPT_RUN = re.compile(r"[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
# An algebraic term before the final value: a letter joined to + or -, or a digit glued to a
# letter ("2x + 1", "u + at"), a power of a letter in a sum ("x^2 + 1").
_ALGEBRA = re.compile(r"[^\W\d_]\s*[+-]|[+-]\s*[^\W\d_]|\d[^\W\d_]|[^\W\d_]\s*\^\s*\d+\s*[+-]")
_FILLER = frozenset(
    "the answer is it its it's about approx approximately roughly around nearly almost exactly "
    "final result equals gives so thus therefore".split()
)
# Short words that change what the value means: a verdict, or a second value ("2 or 3").
_MEANING_WORDS = frozenset("no not yes or and nor".split())
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_UNIT_JOINS = re.compile(r"\s*([/^*-])\s*")
_GLUED_POWER = re.compile(r"([^\W\d_])(-?\d+)\b")
_PROSE = re.compile(r"[^\W\d_]{4,}")


class Quantity(NamedTuple):
    """What a quantity answer states: its final value, the unit (and anything else) written
    after it, and the values of its working.

    Attributes
    ----------
    value : str
        The final value as a plain decimal, exact ("19.6" for "19.60", "19,6" and "1.96e1").
    unit : str
        What follows the value (``""`` for nothing): symbols in the case written ("M" is
        not "m"), words in lower case, single spaces, none around ``/ ^ * -``, a power glued
        to its symbol written with ``^`` ("m/s2" is "m/s^2").
    working : tuple of str
        The values written before the final one ("v = gt = 9.8*2 = 19.6 m/s": 9.8 and 2).
    restarts : tuple of str
        The short names written between a value and an ``=`` ("x = 2 y = 3": y), lower case:
        a second assignment (its own line, before whitespace was collapsed) or a unit in the
        working ("2.0 s = 19.6"). Either way they are part of what the answer states:
        "x = 2, y = 3" is not "y = 2, x = 3".
    """

    value: str
    unit: str
    working: tuple[str, ...] = ()
    restarts: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The quantity as a grader reads it, e.g. ``"19.6 m/s"``."""
        return f"{self.value} {self.unit}".strip()


def _value(match: re.Match[str]) -> str | None:
    mantissa = match["mantissa"]
    if re.fullmatch(r"[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?", mantissa):
        mantissa = mantissa.replace(",", "")  # 1,000 and 1,000.5: thousands
    power = match["power"] or match["e"]
    try:
        value = Decimal(mantissa.replace(",", "."))  # 19,6: a decimal comma
        if power is not None:
            value = value.scaleb(int(power))
    except (InvalidOperation, ValueError):  # an exponent of thousands of digits
        return None
    if not value.is_finite():
        return None
    if match["sign"] and match["sign"].strip() == "-":
        value = -value
    return _plain(value)


def _plain(value: Decimal) -> str:
    """A decimal written one way: no exponent for everyday sizes, no trailing zeros."""
    if value == 0:
        return "0"
    if -6 <= value.adjusted() <= 15:
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return format(value.normalize(), "e")


def _unit(tail: str) -> str:
    # One spelling of what is written: single spaces, none around / ^ * -, a power glued to
    # its symbol written as one ("m/s2", what NFKC makes of "m/s²", is "m/s^2").
    # Words (four letters or more) are lower case: "Meters" is "meters"; symbols keep theirs.
    joined = _UNIT_JOINS.sub(r"\1", " ".join(tail.split())).strip(" .!")
    joined = _PROSE.sub(lambda m: m.group().casefold(), joined)
    return _GLUED_POWER.sub(r"\1^\2", joined)


def final_quantity(text: str) -> Quantity | None:
    """What ``text`` states, when it is just a quantity (see the module's rules).

    Parameters
    ----------
    text : str
        An answer (any case; NFKC-normalised text reads best).

    Returns
    -------
    Quantity or None
        ``None`` when the text is not just a quantity: no stand-alone value, words other than
        filler before the final one, several statements, algebra, fractions or powers.

    Examples
    --------
    >>> final_quantity("v = gt = 9.8*2 = 19.6 m/s")
    Quantity(value='19.6', unit='m/s', working=('9.8', '2'), restarts=())
    >>> final_quantity("about 19,6 ms-1")
    Quantity(value='19.6', unit='ms^-1', working=(), restarts=())
    >>> final_quantity("yes, it is 7") is None
    True
    """
    # Raw superscripts (NFKC makes them digits) are powers: "10⁻¹⁹" is "10^-19".
    cased = _SUPERSCRIPT_RUN.sub(lambda m: "^" + m.group().translate(_SUPERSCRIPT_DIGITS), text).translate(_SIGNS)
    folded = cased.casefold()
    if _FLAT_POWER.search(folded):
        return None
    values = list(_VALUE.finditer(folded))
    if not values:
        return None
    last = values[-1]
    marked = _VALUE.sub("#", folded)
    before = folded[: last.start("mantissa")]  # with the value's sign: "x^2 + 1" is algebra
    if _NOT_A_VALUE.search(marked) or _UNIT_THEN_VALUE.search(_VALUE.sub("#", before)):
        return None
    if re.search(r"[,;:?!<>≤≥]", before) or _ALGEBRA.search(before):
        return None  # a second statement, a comparison, or algebra
    if any((w not in _FILLER and len(w) > 2) or w in _MEANING_WORDS for w in _WORD.findall(before)):
        return None  # prose before the value: "it falls to 80", "yes, it is 7"
    parsed = [_value(v) for v in values]
    if any(v is None for v in parsed):
        return None
    # The unit as written: a symbol's case is its meaning ("0.5 M" is molar, "0.5 m" metres,
    # "1 MW" a billion times "1 mW"). Casefolding rarely changes a text's length ("ß"); then
    # the folded tail is all there is.
    tail = cased[last.end() :] if len(cased) == len(folded) else folded[last.end() :]
    # A currency sign before the value is its unit, as one after it is: "$5" is not "€5" nor "5".
    prefix = "".join(c for c in before if unicodedata.category(c) == "Sc")
    unit = _unit(tail)
    restarts = tuple(_RESTART.findall(_VALUE.sub("#", before)))
    return Quantity(parsed[-1], f"{prefix} {unit}".strip() if prefix else unit, tuple(parsed[:-1]), restarts)  # type: ignore[arg-type]


def is_quantity_answer(text: str) -> bool:
    """Whether ``text`` is a short answer that states a quantity.

    Parameters
    ----------
    text : str

    Returns
    -------
    bool
        True for "19.6 m/s", "v = gt = 9.8*2 = 19.6 m/s" or "about 20 m/s"; False for an
        explanation, and for no number.
    """
    quantity = final_quantity(text)
    return quantity is not None and len(_PROSE.findall(quantity.unit)) <= _UNIT_PROSE_WORDS


def is_numeric_question(texts: Iterable[str], counts: Iterable[int] | None = None) -> bool:
    """Whether a question asks for a number: most of its non-blank answers are quantities.

    Parameters
    ----------
    texts : iterable of str
        The answers (or the distinct answers, with ``counts``).
    counts : iterable of int, optional
        How many students wrote each text; 1 each when not given.

    Returns
    -------
    bool
        At least :data:`NUMERIC_SHARE` of the non-blank answers are
        :func:`is_quantity_answer`.
    """
    texts = list(texts)
    weights = [1] * len(texts) if counts is None else [int(c) for c in counts]
    if len(weights) != len(texts):
        raise ValueError(f"{len(weights)} counts for {len(texts)} texts")
    # Each distinct text is parsed once: a question of 100,000 answers repeats most of them,
    # and late-answer placement asks this of every stored answer.
    students: dict[str, int] = {}
    for text, weight in zip(texts, weights, strict=True):
        if text.strip():
            students[text] = students.get(text, 0) + weight
    answered = sum(students.values())
    if answered == 0:
        return False
    numeric = sum(w for text, w in students.items() if is_quantity_answer(text))
    return numeric >= NUMERIC_SHARE * answered


def quantity_classes(
    texts: Sequence[str], counts: Sequence[int] | np.ndarray | None = None, min_size: int = 3
) -> list[tuple[Quantity, list[int]]]:
    """The texts that state the same quantity, for each quantity at least ``min_size``
    students wrote.

    Parameters
    ----------
    texts : sequence of str
    counts : sequence of int, optional
        How many students wrote each text; 1 each when not given.
    min_size : int
        Fewest students behind a class.

    Returns
    -------
    list of (Quantity, list of int)
        Each quantity with the indices of its texts, in the order the quantities first occur.
    """
    weights = [1] * len(texts) if counts is None else [int(c) for c in counts]
    by_quantity: dict[Quantity, list[int]] = {}
    for i, text in enumerate(texts):
        quantity = final_quantity(text)
        if quantity is not None:
            by_quantity.setdefault(quantity, []).append(i)
    return [(q, members) for q, members in by_quantity.items() if sum(weights[i] for i in members) >= min_size]


def quantity_title(quantity: Quantity) -> str:
    """The title of a group of answers stating ``quantity``, e.g. ``"= 19.6 m/s"`` or
    ``"= 19.6 m/s (working 9.8, 2)"``.

    Parameters
    ----------
    quantity : Quantity

    Returns
    -------
    str
    """
    title = f"= {quantity.text}" + ("" if quantity.unit else " (no unit)")
    if quantity.working:
        title += f" (working {', '.join(quantity.working)})"
    if quantity.restarts:  # what tells "x = 2, y = 3" from "y = 2, x = 3"
        title += f" (after {', '.join(f'{name} =' for name in quantity.restarts)})"
    return title
