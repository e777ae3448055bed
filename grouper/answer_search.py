"""Find the answers that mention a phrase: the search of the UI's Search page, no Streamlit.

A query is a list of words, any of them double-quoted phrases: ``canberra "capital city"``
finds the answers whose text contains ``canberra`` and ``capital city``, in any order. Words
and phrases match anywhere in the text (``canber`` finds ``Canberra``), compared after
Unicode NFKC, case folding and whitespace collapsing, so that ``ＣＡＮＢＥＲＲＡ`` (full width),
``canberra`` and ``CANBERRA`` are the same word and a phrase matches across a line break.

Folding a text costs far more than testing it, so the UI folds a question's answers once
(:func:`fold_texts`) and searches the folded texts on every query (:func:`search_folded`);
:func:`search_answers` does both at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

__all__ = ["fold_text", "fold_texts", "parse_query", "search_answers", "search_folded"]

_WHITESPACE = re.compile(r"\s+")
# A double-quoted phrase (possibly empty), or a run of anything but whitespace and quotes.
_TERM = re.compile(r'"([^"]*)"|([^\s"]+)')


def fold_text(text: str) -> str:
    """The form answers and queries are compared in.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        Unicode NFKC, case-folded (then NFKC again, as folding can leave text that NFKC
        would change), a dotted capital I as a plain i, curly double quotes as straight ones,
        invisible format characters (soft hyphens, zero-width spaces) dropped, runs of
        whitespace replaced by one space, stripped.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    # "İ" (Turkish capital dotted I) folds to "i" and a combining dot, which a typed "i" would
    # never match: "İstanbul" is found by "istanbul".
    folded = folded.replace("i\u0307", "i").translate(_QUOTES)
    # A phone types “capital city” for "capital city"; "Can\u00adberra" reads "Canberra".
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return _WHITESPACE.sub(" ", visible).strip()


_QUOTES = str.maketrans({q: '"' for q in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"})


def fold_texts(texts: Mapping[str, str]) -> dict[str, str]:
    """:func:`fold_text` of every answer, keyed and ordered as ``texts``.

    Parameters
    ----------
    texts : mapping of str to str
        Answer id to the text as the student wrote it.

    Returns
    -------
    dict of str to str
        Answer id to the folded text, in the order of ``texts``.
    """
    return {answer_id: fold_text(text) for answer_id, text in texts.items()}


def parse_query(query: str) -> tuple[str, ...]:
    """The folded terms of a query: its words, and its double-quoted parts as phrases.

    Parameters
    ----------
    query : str
        Words separated by whitespace; a part between double quotes is one phrase. A quote
        left unclosed is ignored (the words after it are words). Full-width quotes count
        as quotes (NFKC makes them ``"``).

    Returns
    -------
    tuple of str
        Each term folded as :func:`fold_text`, in the order written, without duplicates and
        without empty ones (``""`` is no term); empty for a blank query.
    """
    folded = fold_text(query)
    if folded.count('"') % 2:  # an unclosed quote: drop the last one
        cut = folded.rindex('"')
        folded = folded[:cut] + " " + folded[cut + 1 :]
    terms: dict[str, None] = {}
    for phrase, word in _TERM.findall(folded):
        term = (phrase if not word else word).strip()
        if term:
            terms[term] = None
    return tuple(terms)


def search_folded(folded: Mapping[str, str], query: str | Iterable[str]) -> list[str]:
    """The answers whose folded text contains every term of ``query``.

    Parameters
    ----------
    folded : mapping of str to str
        Answer id to its text folded by :func:`fold_text` (see :func:`fold_texts`).
    query : str or iterable of str
        A query as typed (parsed by :func:`parse_query`), or terms already parsed.

    Returns
    -------
    list of str
        Matching answer ids, in the order of ``folded``; empty when the query has no terms.
    """
    terms = parse_query(query) if isinstance(query, str) else tuple(query)
    if not terms:
        return []
    # One pass per term over the answers still in the running: each pass is a plain
    # comprehension with a substring test, several times faster than ``all(...)`` over a
    # generator per answer, and later terms see only the earlier terms' matches.
    first, *rest = terms
    candidates = [(answer_id, text) for answer_id, text in folded.items() if first in text]
    for term in rest:
        candidates = [(answer_id, text) for answer_id, text in candidates if term in text]
    return [answer_id for answer_id, _ in candidates]


def search_answers(texts: Mapping[str, str], query: str) -> list[str]:
    """The answers whose text mentions every word and quoted phrase of ``query``.

    Parameters
    ----------
    texts : mapping of str to str
        Answer id to the text as the student wrote it.
    query : str
        Words in any order; a double-quoted part is matched as an exact phrase. Compared
        after NFKC, case folding and whitespace collapsing; a word matches inside longer
        words too.

    Returns
    -------
    list of str
        Matching answer ids, in the order of ``texts``; empty for a blank query.

    Examples
    --------
    >>> texts = {"a": "It is Canberra", "b": "Sydney, not Canberra", "c": "ＣＡＮＢＥＲＲＡ"}
    >>> search_answers(texts, "canberra")
    ['a', 'b', 'c']
    >>> search_answers(texts, 'canberra "is canberra"')
    ['a']
    >>> search_answers(texts, "   ")
    []
    """
    terms = parse_query(query)
    if not terms:
        return []
    return search_folded(fold_texts(texts), terms)
