"""The final quantity of an answer to a numeric question ("19.6 m/s"), and whether a
question is numeric.

On a question whose answers are numbers ("How fast is it moving when it lands?"), what
decides the grade is the final value and its unit: "19.6 m/s" is right, "19.6" lacks the unit,
"19.6 m/s^2" has the wrong one, "9.8 m/s" is a slip. A sentence encoder sees these as nearly the
same text, and the reference signals see a worked solution ("v = g t = 9.8 m/s^2 x 2.0 s =
19.6 m/s") as sharing words with every one of them. Grouping such answers by their final
quantity is what a grader would do by eye, and what makes each group one grade
(:func:`grouper.clustering.group_embeddings`, ``docs/grouping.md``).

Only numbers that stand alone count: an exponent (``m/s^2``, ``ms-1``, ``10^8``) or a digit
glued to a letter (``x2``, ``t2``) is part of a unit or a name, not a value. The unit is what
directly follows the value: short symbols (``m``, ``s^-1``), a slash and what follows it, or
"per" phrases ("meters per second"), up to a clause mark or a longer word ("19.6 m/s
downwards" is ``19.6 m/s``). Spellings of the same unit are not unified ("m/s" and "meters per
second" are two groups of one grade each, which costs the grader one action more and never a
wrong grade).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
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

#: A question is numeric when at least this share of its non-blank answers are short answers
#: ending in a quantity. On the three benchmark corpora no question reaches 0.41 (answers
#: like "terminal 1 is connected to terminal 4" end in a number too); a question asking for
#: a number has most of its answers there (0.93 on the sample ball-drop question).
NUMERIC_SHARE = 0.6

#: Fewest answers ending in one quantity that the re-cut of the grade adaptation keeps
#: together and that late answers are placed by: the grouping's smallest group
#: (``GroupingSettings.min_cluster_size``).
QUANTITY_CLASS_SIZE = 3

#: At most this many words of four or more letters around the quantity: "It is moving at
#: 19.6 m/s when it lands." is still a quantity answer, an explanation is not.
_PROSE_WORDS = 3

_SUPERSCRIPTS = str.maketrans({"²": "^2", "³": "^3", "¹": "^1", "⁻": "^-", "−": "-", "×": "x", "·": "*"})
# A value: a sign, digits with decimal point or comma (a comma before exactly three digits
# separates thousands), and an optional power of ten ("3 x 10^8", "1.5e3"). The look-behind
# keeps out exponents ("^2") and digits glued to a letter ("ms-1", "x2"); the look-ahead keeps
# out the "2" of "2nd".
_VALUE = re.compile(
    r"(?<![\w^.,])(?<![\w^][-+])(?P<sign>[-+])?(?P<mantissa>\d+(?:,\d{3})*(?![\d,])(?:[.,]\d+)?|\d*[.,]\d+)"
    r"(?:\s*[x*]\s*10\s*\^\s*(?P<power>[-+]?\d+)|e(?P<e>[-+]?\d+))?"
    r"(?!(?:st|nd|rd|th)\b)"  # not an ordinal: "2nd"
)
# What ends a final answer's unit: a clause mark, a full stop that is not a decimal point,
# or the start of a reason.
_UNIT_END = re.compile(r"[;,!?()\[\]=]|\.(?!\d)|\b(?:because|since|so|as|which|when|if)\b")
_NOT_UNITS = frozenset("a an and or but the is it its in at on to of for with then than not".split())
_UNIT_WORD = re.compile(r"[^\W\d_][\w/^*.-]*|/[\w/^*.-]*|%|°\w*")
_UNIT_SYMBOL = re.compile(r"[^\W\d_]{1,3}(?:\^?-?\d)?|%|°[a-z]?")
_UNIT_JOINS = re.compile(r"\s*([/^*-])\s*")
_GLUED_POWER = re.compile(r"([^\W\d_])(-?\d+)\b")
_PROSE = re.compile(r"[^\W\d_]{4,}")


class Quantity(NamedTuple):
    """A value with its unit as written (``""`` for none).

    Attributes
    ----------
    value : float
        Rounded to 6 significant digits, so that "19.6" and "19.60" are one value.
    unit : str
        Lower case, with single spaces between words and none around ``/ ^ * -``.
    """

    value: float
    unit: str

    @property
    def text(self) -> str:
        """The quantity as a grader reads it, e.g. ``"19.6 m/s"``."""
        return f"{self.value:g} {self.unit}".strip()


def _value(match: re.Match[str]) -> float:
    mantissa = match["mantissa"]
    if re.fullmatch(r"\d+(?:,\d{3})+(?:\.\d+)?", mantissa):
        mantissa = mantissa.replace(",", "")  # 1,000 and 1,000.5: thousands
    value = float(mantissa.replace(",", "."))  # 19,6: a decimal comma
    power = match["power"] or match["e"]
    if power is not None:
        value *= 10.0 ** int(power)
    if match["sign"] == "-":
        value = -value
    return float(f"{value:.6g}")


def _unit(tail: str) -> str:
    words = _UNIT_END.split(tail, maxsplit=1)[0].split()
    unit: list[str] = []
    for word in words:
        if not unit:
            # The first word is the unit if it looks like one, and is not a joining word
            # ("19.6 and ...").
            if word in _NOT_UNITS or not _UNIT_WORD.fullmatch(word):
                break
        elif not (
            unit[-1].endswith("/") or unit[-1] == "per" or word == "per" or word.startswith("/")
            or _UNIT_SYMBOL.fullmatch(word)
        ):
            break  # a longer word after the unit: "m/s downwards"
        unit.append(word)
    # One spelling per unit as written: no spaces around / ^ * -, single spaces elsewhere,
    # and a power glued to its symbol written as one ("m/s2", what NFKC makes of "m/s²", is
    # "m/s^2"; "ms-1" is "ms^-1").
    joined = _UNIT_JOINS.sub(r"\1", " ".join(unit)).rstrip(".")
    return _GLUED_POWER.sub(r"\1^\2", joined)


def final_quantity(text: str) -> Quantity | None:
    """The last stand-alone value in ``text`` and the unit written after it.

    Parameters
    ----------
    text : str
        An answer (any case; NFKC-normalised text reads best).

    Returns
    -------
    Quantity or None
        ``None`` when the text holds no stand-alone number.

    Examples
    --------
    >>> final_quantity("v = gt = 9.8*2 = 19.6 m/s")
    Quantity(value=19.6, unit='m/s')
    >>> final_quantity("19.6 m/s^2 because it is accelerating")
    Quantity(value=19.6, unit='m/s^2')
    >>> final_quantity("19,6 ms-1")
    Quantity(value=19.6, unit='ms^-1')
    """
    folded = text.casefold().translate(_SUPERSCRIPTS)
    last = None
    for last in _VALUE.finditer(folded):  # noqa: B007 - the last match is the one wanted
        pass
    if last is None:
        return None
    return Quantity(_value(last), _unit(folded[last.end() :]))


def is_quantity_answer(text: str) -> bool:
    """Whether ``text`` is a short answer that ends in a quantity.

    Parameters
    ----------
    text : str

    Returns
    -------
    bool
        True for "19.6 m/s", "v = u + at = 0 + 9.8 x 2 = 19.6 m/s" or "about 20 m/s"; False
        for an explanation with more than a few words around its numbers, and for no number.
    """
    return final_quantity(text) is not None and len(_PROSE.findall(text.casefold())) <= _PROSE_WORDS


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
    answered = sum(w for t, w in zip(texts, weights, strict=True) if t.strip())
    if answered == 0:
        return False
    numeric = sum(w for t, w in zip(texts, weights, strict=True) if t.strip() and is_quantity_answer(t))
    return numeric >= NUMERIC_SHARE * answered


def quantity_classes(
    texts: Sequence[str], counts: Sequence[int] | np.ndarray | None = None, min_size: int = 3
) -> list[tuple[Quantity, list[int]]]:
    """The texts that end in the same quantity, for each quantity at least ``min_size``
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
    """The title of a group of answers ending in ``quantity``, e.g. ``"ends in 19.6 m/s"``.

    Parameters
    ----------
    quantity : Quantity

    Returns
    -------
    str
    """
    return f"ends in {quantity.text}" + ("" if quantity.unit else " (no unit)")
