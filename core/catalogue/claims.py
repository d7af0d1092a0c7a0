"""What a listing claims: a tag value per tag, each with the seller's words that say it.

Structured columns win (the seller filled a field on purpose); otherwise the title is read,
and the description only for tags the title does not speak of. A tag the listing does not
mention is not claimed (and so not compared). Where a field names two garments, the head
garment is the claim when English says which it is: "shirt with matching shorts" and
"tee for wearing under a jacket" are the first one, "hoodie dress" (two garment words side by
side) the last one; "shirt and shorts set" is ambiguous and is reported, not compared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.catalogue.vocabulary import Mention, Vocabulary, normalise_value, tokenize

# Words between two garments that make the first one the listing's garment.
_HEAD_FIRST = frozenset("with w featuring incl including plus over under for to matching".split())
# Words between (or around) two garments that make the listing a set of both.
_BOTH = frozenset("and & + or set bundle pack combo outfit".split())
CATEGORY_TAG = "category"
# Tags that are a property of the garment word itself (a "hoodie dress" is not upper wear): they
# are claimed only from the very words of the category claim.
GARMENT_WORD_TAGS = frozenset({"type"})
# Structured columns named in American or other spellings.
COLUMN_ALIASES = {"color": "colour", "sleeve": "sleeve_length", "sleeves": "sleeve_length", "type": "type"}


@dataclass(frozen=True)
class Claim:
    """One claimed tag: the values it accepts, and where the seller said it.

    Attributes:
        tag: The tag (``category``, ``sleeve_length``, ...).
        values: The values the seller's words mean (the check accepts any of them).
        phrase: The seller's words (``"hooded sweatshirt"``) or the structured cell.
        field: ``title``, ``description`` or ``column`` (a structured column).
        start, end: Character span of the phrase in its field (-1 for a column).
        also: Other garments the field names that the claim is not about ("shorts").
    """

    tag: str
    values: tuple[str, ...]
    phrase: str
    field: str
    start: int = -1
    end: int = -1
    also: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {**asdict(self), "values": list(self.values), "also": list(self.also)}


@dataclass(frozen=True)
class Ambiguity:
    """A tag the listing says two incompatible things about (not compared)."""

    tag: str
    field: str
    phrases: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "tag": self.tag,
            "field": self.field,
            "phrases": list(self.phrases),
            "values": [list(v) for v in self.values],
        }

    def describe(self) -> str:
        """In words: 'title names two garments: "shirt" (Shirt) and "shorts" (Shorts)'."""
        parts = [f'"{p}" ({" / ".join(v)})' for p, v in zip(self.phrases, self.values, strict=True)]
        what = "garments" if self.tag == CATEGORY_TAG else f"{self.tag} values"
        return f"{self.field} names {len(parts)} {what}: {' and '.join(parts)}; not compared"


@dataclass
class Reading:
    """A listing read against a vocabulary."""

    claims: list[Claim] = field(default_factory=list)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    negated: list[Mention] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "claims": [c.as_dict() for c in self.claims],
            "ambiguous": [a.as_dict() for a in self.ambiguous],
            "negated": [{"tag": m.tag, "phrase": m.phrase, "field": m.field} for m in self.negated],
        }


def read_listing(
    vocabulary: Vocabulary,
    title: str,
    description: str = "",
    structured: dict[str, str] | None = None,
) -> Reading:
    """The listing's claims: structured columns first, then the title, then the description."""
    reading = Reading()
    structured = {COLUMN_ALIASES.get(k, k): v for k, v in (structured or {}).items() if v and str(v).strip()}
    for tag, raw in structured.items():
        reading.claims.append(Claim(tag, _column_values(vocabulary, tag, str(raw)), str(raw).strip(), "column"))
    by_field = {
        "title": vocabulary.mentions(title, "title"),
        "description": vocabulary.mentions(description, "description"),
    }
    texts = {"title": title, "description": description}
    # The category first: the garment-word tags follow its claim.
    for tag in sorted(vocabulary.tags, key=lambda t: t != CATEGORY_TAG):
        if tag in structured:
            continue
        for field_name in ("title", "description"):
            mentions = [m for m in by_field[field_name] if m.tag == tag]
            reading.negated.extend(m for m in mentions if m.negated)
            said = [m for m in mentions if not m.negated]
            if tag in GARMENT_WORD_TAGS:
                said = [m for m in said if _same_words_as_category(reading, m)]
            if not said:
                continue
            resolved = _resolve(tag, said, texts[field_name])
            (reading.claims if isinstance(resolved, Claim) else reading.ambiguous).append(resolved)
            break
    return reading


def _same_words_as_category(reading: Reading, m: Mention) -> bool:
    category = next((c for c in reading.claims if c.tag == CATEGORY_TAG), None)
    return category is None or (category.field, category.start, category.end) == (m.field, m.start, m.end)


def _column_values(vocabulary: Vocabulary, tag: str, raw: str) -> tuple[str, ...]:
    """A structured cell's values: a value's own name (any case or spacing), else a phrase, else as written."""
    key = normalise_value(raw)
    for value in vocabulary.values(tag):
        if normalise_value(value) == key:
            return (value,)
    return vocabulary.lookup(tag, raw) or (raw.strip(),)


def _claim(m: Mention, values: tuple[str, ...] | None = None, also: tuple[str, ...] = ()) -> Claim:
    return Claim(m.tag, values or m.values, m.phrase, m.field, m.start, m.end, also)


def _resolve(tag: str, said: list[Mention], text: str) -> Claim | Ambiguity:
    """One claim from a field's mentions of a tag, or the ambiguity when the field says two things."""
    common = set(said[0].values)
    for m in said[1:]:
        common &= set(m.values)
    if common:
        # "tee top", "cotton tee ... this top": one garment said twice, the narrowest words win.
        narrowest = min(said, key=lambda m: len(m.values))
        return _claim(narrowest, tuple(v for v in narrowest.values if v in common))
    head = _head_garment(said, text)
    if head is not None:
        others = tuple(dict.fromkeys(m.phrase for m in said if not set(m.values) & set(head.values)))
        return _claim(head, also=others)
    distinct = list({m.values: m for m in said}.values())
    return Ambiguity(tag, said[0].field, tuple(m.phrase for m in distinct), tuple(m.values for m in distinct))


def _head_garment(said: list[Mention], text: str) -> Mention | None:
    """The garment a title is about when it names several, or None when English does not say."""
    tokens = [t.text for t in tokenize(text)]
    if any(t in ("set", "bundle", "pack", "combo", "outfit") for t in tokens):
        return None
    head = said[0]
    for nxt in said[1:]:
        if set(nxt.values) & set(head.values):
            continue
        between = tokens[head.last : nxt.first]
        if not between:
            head = nxt  # "hoodie dress": a compound noun is about its last word
        elif any(t in _BOTH for t in between):
            return None
        elif any(t in _HEAD_FIRST for t in between):
            continue  # "shirt with matching shorts": the first garment is the listing's
        else:
            return None
    return head
