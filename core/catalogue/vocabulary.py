"""The vocabulary: which words and phrases of a listing mean which tag value, and reading a listing with it.

A vocabulary is a list of ``(tag, value, phrase)`` rows: ``("category", "T-Shirt", "tee")``,
``("sleeve_length", "full", "l/s")``, where a row may also name the value's **family**: the
look-alike group it belongs to (``T-Shirt``, ``Longsleeve`` and ``Shirt`` are ``tops``; ``Shoes``
is ``footwear``). The check counts a disagreement inside a family for less than one across
families (:mod:`core.catalogue.check` says why); a value without a family is its own. One phrase may mean several values of a tag (``jacket`` is
``Outwear`` or ``Blazer``; ``jeans`` is ``Pants`` in a 16-class project and ``Jeans`` in one that
uses the detector's labels): a claim then accepts any of them, and the check sums their
probabilities. The shipped default (``default_vocabulary.csv``) covers the 16 categories of the
clothing catalogue, the detector's nine labels and the default attribute schema, with many
sellers' words for each.

Text is matched as tokens, so capitals, hyphens and punctuation do not matter (``T-SHIRT``,
``t shirt`` and ``T-shirt,`` read alike); a token may be a plural of the phrase's word
(``hoodies``, ``dresses``); ``sleeveless`` is its own word and never "sleeve"; a phrase right
after a negation (``not for kids``, ``no hood``) is noted, not claimed. For each tag the longest
phrase wins (``dress shirt`` is a shirt, ``shirt dress`` a dress, ``polo neck`` a jumper, not a
polo shirt).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_VOCABULARY_CSV = Path(__file__).with_name("default_vocabulary.csv")
MAX_PHRASE_CHARS = 100

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212"), "-")
_DASHES.update(dict.fromkeys(map(ord, "\u2018\u2019\u02bc`"), "'"))
# Words (letters and digits, with inner '/' or apostrophe: l/s, 3/4, men's) and the punctuation
# that ends a clause or joins two garments. Hyphens and other marks only separate words.
_TOKEN = re.compile(r"[^\W_]+(?:[/'][^\W_]+)*|[.,;:!?()\[\]|&+]")
BREAKS = frozenset(".,;:!?()[]|")
NEGATORS = frozenset({"not", "no", "non", "without", "never", "isnt", "nor", "neither"})
# Words that may stand between a negation and what it negates ("not for kids", "not a dress").
_NEGATION_FILLER = frozenset(
    "for a an the suitable intended meant to be worn as of made in sold really actually exactly "
    "quite is it this our your any".split()
)
_AFTER_NEGATION = (("not", "included"), ("excluded",), ("sold", "separately"), ("not", "incl"))


class VocabularyError(ValueError):
    """A vocabulary file or row that cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class Token:
    """A word (lower case, possessive dropped) or a punctuation mark, with its span in the original text."""

    text: str
    start: int
    end: int

    @property
    def is_break(self) -> bool:
        """A mark that ends a clause (a negation does not reach over it)."""
        return self.text in BREAKS


def tokenize(text: str) -> list[Token]:
    """The text's tokens: lower case, hyphens split words, possessives dropped (``men's`` -> ``men``)."""
    # Per-character lower case keeps offsets valid for highlighting (str.lower() may change
    # a string's length, e.g. for a dotted capital I).
    folded = "".join(c.lower() if len(c.lower()) == 1 else c for c in text.translate(_DASHES))
    tokens = []
    for m in _TOKEN.finditer(folded):
        word = m.group()
        if word.endswith("'s"):
            word = word[:-2]
        tokens.append(Token(word.replace("'", ""), m.start(), m.end()))
    return tokens


def phrase_words(phrase: str) -> tuple[str, ...]:
    """A vocabulary phrase as the words the matcher compares (punctuation marks in it are ignored)."""
    return tuple(t.text for t in tokenize(phrase) if not t.is_break and t.text not in "&+")


def _singulars(word: str) -> tuple[str, ...]:
    """The word and the singular forms it may be the plural of (hoodies -> hoodie, dresses -> dress)."""
    forms = [word]
    if len(word) > 3 and word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if len(word) > 3 and word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        forms.append(word[:-2])
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    return tuple(forms)


def normalise_value(value: str) -> str:
    """A value's key for comparing names: case, spaces, hyphens and underscores ignored (T-shirt = tshirt)."""
    return re.sub(r"[\s_\-]+", "", value.strip().lower())


@dataclass(frozen=True)
class Mention:
    """A vocabulary phrase found in a field of a listing.

    Attributes:
        tag: The tag it speaks of.
        values: The tag values it means (one, or several for a broad word).
        phrase: The seller's words, as written.
        field: ``title`` or ``description``.
        start, end: Character span of ``phrase`` in the field.
        first, last: Token span (``last`` exclusive).
        negated: Said in a negation ("not for kids"): noted, never claimed.
    """

    tag: str
    values: tuple[str, ...]
    phrase: str
    field: str
    start: int
    end: int
    first: int
    last: int
    negated: bool = False


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    values: list[str] = field(default_factory=list)


class Vocabulary:
    """Tag -> value -> phrases, indexed for longest-phrase matching per tag."""

    def __init__(self, rows: Iterable[Sequence[str]]) -> None:
        """Rows ``(tag, value, phrase)`` or ``(tag, value, phrase, family)``; a value's first family wins."""
        self.rows: list[tuple[str, str, str]] = []
        self.families: dict[tuple[str, str], str] = {}
        self._family_index: dict[tuple[str, str], str] | None = None
        self._tries: dict[str, _Node] = {}
        seen: set[tuple[str, str, tuple[str, ...]]] = set()
        for row in rows:
            tag, value, phrase = row[0].strip(), row[1].strip(), " ".join(row[2].split())
            family = " ".join(row[3].split()) if len(row) > 3 and row[3] else ""
            words = phrase_words(phrase)
            if not tag or not value or not words:
                continue
            if family:
                self.families.setdefault((tag, value), family)
            if (tag, value, words) in seen:
                continue
            seen.add((tag, value, words))
            self.rows.append((tag, value, phrase))
            node = self._tries.setdefault(tag, _Node())
            for w in words:
                node = node.children.setdefault(w, _Node())
            node.values.append(value)

    def family(self, tag: str, value: str) -> str | None:
        """The family of a tag value (names compared as :func:`normalise_value` does), or None."""
        if self._family_index is None:
            self._family_index = {}
            for (t, v), f in self.families.items():
                self._family_index.setdefault((t, normalise_value(v)), f)
        return self._family_index.get((tag, normalise_value(value)))

    def stored_rows(self) -> list[list[str]]:
        """The rows as the database keeps them: ``[tag, value, phrase]``, plus the family where the value has one."""
        return [[t, v, p, *([self.families[(t, v)]] if (t, v) in self.families else [])] for t, v, p in self.rows]

    def fingerprint(self) -> str:
        """A short hash of the rows and families: a threshold chosen under another vocabulary is not reused."""
        import hashlib

        return hashlib.sha256(self.to_csv().encode("utf-8")).hexdigest()[:12]

    @classmethod
    def default(cls) -> Vocabulary:
        """The shipped English clothing vocabulary."""
        return cls.from_csv(DEFAULT_VOCABULARY_CSV.read_text(encoding="utf-8"))

    @classmethod
    def from_csv(cls, text: str) -> Vocabulary:
        """Reads ``tag,value,phrase`` rows, with an optional ``family`` column (a header row is required).

        Raises:
            VocabularyError: Missing columns, rows with an empty field or an over-long phrase, or a
                value given two families (every bad row is named in the message; nothing is taken
                from a bad file).
        """
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        missing = {"tag", "value", "phrase"} - columns
        if missing:
            raise VocabularyError(
                f"The vocabulary CSV needs the columns tag, value, phrase; missing: {', '.join(sorted(missing))}."
            )
        rows: list[tuple[str, str, str, str]] = []
        problems: list[str] = []
        families: dict[tuple[str, str], str] = {}
        for n, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str | None)}
            tag, value, phrase = row.get("tag", ""), row.get("value", ""), row.get("phrase", "")
            family = " ".join(row.get("family", "").split())
            if not (tag or value or phrase):
                continue
            if not tag or not value or not phrase:
                problems.append(f"row {n}: tag, value and phrase must all be filled")
            elif len(phrase) > MAX_PHRASE_CHARS:
                problems.append(f"row {n}: phrase longer than {MAX_PHRASE_CHARS} characters")
            elif not phrase_words(phrase):
                problems.append(f"row {n}: phrase {phrase!r} has no words")
            elif family and families.setdefault((tag, value), family) != family:
                problems.append(f"row {n}: {tag} {value} is already in the family {families[(tag, value)]!r}")
            else:
                rows.append((tag, value, phrase, family))
        if problems:
            shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
            raise VocabularyError(f"The vocabulary CSV has bad rows: {shown}.")
        return cls(rows)

    def to_csv(self) -> str:
        """The vocabulary as ``tag,value,phrase[,family]`` CSV (what :meth:`from_csv` reads)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if self.families:
            writer.writerow(["tag", "value", "phrase", "family"])
            writer.writerows((t, v, p, self.families.get((t, v), "")) for t, v, p in self.rows)
        else:
            writer.writerow(["tag", "value", "phrase"])
            writer.writerows(self.rows)
        return out.getvalue()

    @property
    def tags(self) -> list[str]:
        """The tags it has phrases for, in first-seen order."""
        return list(self._tries)

    def values(self, tag: str) -> list[str]:
        """The values of ``tag`` it has phrases for, in first-seen order."""
        return list(dict.fromkeys(v for t, v, _ in self.rows if t == tag))

    def lookup(self, tag: str, text: str) -> tuple[str, ...]:
        """The values ``text`` means for ``tag`` as a whole phrase (a structured column's cell), or ()."""
        words = phrase_words(text)
        node = self._tries.get(tag)
        for w in words:
            if node is None:
                return ()
            node = next((node.children[f] for f in _singulars(w) if f in node.children), None)
        return tuple(dict.fromkeys(node.values)) if node is not None else ()

    def mentions(self, text: str, field_name: str) -> list[Mention]:
        """Every phrase of every tag in ``text``, longest first at each place, in text order per tag."""
        tokens = tokenize(text)
        found: list[Mention] = []
        for tag, root in self._tries.items():
            i = 0
            while i < len(tokens):
                end, values = _longest(root, tokens, i)
                if end is None:
                    i += 1
                    continue
                start_char, end_char = tokens[i].start, tokens[end - 1].end
                found.append(
                    Mention(
                        tag,
                        tuple(dict.fromkeys(values)),
                        text[start_char:end_char],
                        field_name,
                        start_char,
                        end_char,
                        i,
                        end,
                        _negated(tokens, i, end),
                    )
                )
                i = end
        return found


def _longest(root: _Node, tokens: list[Token], i: int) -> tuple[int | None, list[str]]:
    """The end (exclusive) and values of the longest phrase starting at token ``i``."""
    best: tuple[int | None, list[str]] = (None, [])
    frontier = [(root, i)]
    while frontier:
        node, j = frontier.pop()
        if node.values and node is not root and (best[0] is None or j > best[0]):
            best = (j, node.values)
        if j >= len(tokens) or tokens[j].is_break:
            continue
        for form in _singulars(tokens[j].text):
            child = node.children.get(form)
            if child is not None:
                frontier.append((child, j + 1))
    return best


def _negated(tokens: list[Token], first: int, last: int) -> bool:
    """Whether a negation governs tokens[first:last] ("not for kids", "no hood", "belt not included")."""
    j = first - 1
    while j >= 0 and first - j <= 4:
        word = tokens[j].text
        if tokens[j].is_break:
            break
        if word in NEGATORS:
            return True
        if word not in _NEGATION_FILLER:
            break
        j -= 1
    after = tuple(t.text for t in tokens[last : last + 2])
    return any(after[: len(p)] == p for p in _AFTER_NEGATION)
