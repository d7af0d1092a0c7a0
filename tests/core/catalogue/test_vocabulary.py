"""The vocabulary and reading a listing's claims: the wording sellers really use."""

from __future__ import annotations

import pytest

from core.catalogue.claims import read_listing
from core.catalogue.vocabulary import Vocabulary, VocabularyError, tokenize

VOCAB = Vocabulary.default()


def claims(title: str, description: str = "", structured: dict[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    return {c.tag: c.values for c in read_listing(VOCAB, title, description, structured).claims}


def phrase(title: str, tag: str) -> str:
    return next(c.phrase for c in read_listing(VOCAB, title).claims if c.tag == tag)


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("Organic cotton tee", "T-Shirt"),
        ("T-SHIRT, crew neck", "T-Shirt"),
        ("t shirt", "T-Shirt"),
        ("Tshirts (pack of 3)", "T-Shirt"),
        ("Slim chinos", "Pants"),
        ("Retro trainers", "Shoes"),
        ("Sneakers", "Shoes"),
        ("Waterproof parka", "Outwear"),
        ("Floral romper", "Body"),
        ("Grey hooded sweatshirt", "Hoodie"),
        ("Zip-up HOODIES", "Hoodie"),
        ("Summer dresses", "Dress"),
        ("L/S tee", "Longsleeve"),
        ("Long-sleeved T-shirt", "Longsleeve"),
        ("Oxford dress shirt", "Shirt"),  # longest phrase: a shirt, not a dress
        ("Denim shirt dress", "Dress"),
        ("Polo-neck jumper", "Longsleeve"),  # a polo neck is a jumper, not a polo shirt
        ("Piqué polo shirt", "Polo"),
    ],
)
def test_category_words(title: str, category: str) -> None:
    assert category in claims(title)["category"]


@pytest.mark.parametrize(
    ("title", "sleeve"),
    [
        ("Men's full sleeve shirt", "full"),
        ("Long-sleeved top", "full"),
        ("long sleeve top", "full"),
        ("L/S henley", "full"),
        ("Short-sleeved shirt", "half"),
        ("Sleeveless top", "sleeveless"),
    ],
)
def test_sleeve_words(title: str, sleeve: str) -> None:
    assert claims(title)["sleeve_length"] == (sleeve,)


def test_sleeveless_is_not_a_sleeve() -> None:
    reading = claims("Sleeveless summer dress")
    assert reading["sleeve_length"] == ("sleeveless",)
    assert "full" not in reading["sleeve_length"] and "half" not in reading["sleeve_length"]


def test_tokens_keep_offsets_and_fold_case_hyphens_and_possessives() -> None:
    text = "Men's T‑Shirt—L/S!"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == ["men", "t", "shirt", "l/s", "!"]
    assert text[tokens[1].start : tokens[2].end] == "T‑Shirt"


def test_punctuation_stops_a_phrase() -> None:
    # "long, sleeve" is not "long sleeve"
    assert "sleeve_length" not in claims("Dress long, sleeve details")


def test_negation_is_noted_not_claimed() -> None:
    reading = read_listing(VOCAB, "Hoodie, not for kids")
    assert "age_group" not in {c.tag for c in reading.claims}
    assert [m.phrase for m in reading.negated] == ["kids"]
    assert claims("Kids hoodie")["age_group"] == ("kids",)
    # a word that merely starts with "non" is no negation of what follows it
    assert "Shirt" in claims("Non-iron shirt")["category"]
    assert claims("T-shirt with no print")["pattern"] == ("solid",)  # "no print" is plain, not printed
    assert "category" not in claims("Not a dress: see the photos")


def test_two_garments_head_garment_or_ambiguous() -> None:
    with_matching = read_listing(VOCAB, "Linen shirt with matching shorts")
    category = next(c for c in with_matching.claims if c.tag == "category")
    assert "Shirt" in category.values and category.also == ("shorts",)
    assert next(c for c in with_matching.claims if c.tag == "type").values == ("upper wear",)
    assert "Dress" in claims("Hoodie dress")["category"]  # a compound noun is about its last word
    assert "type" not in claims("Hoodie dress")  # a hoodie dress is not upper wear
    pair = read_listing(VOCAB, "Shirt and shorts set")
    assert "category" not in {c.tag for c in pair.claims}
    assert pair.ambiguous[0].tag == "category"
    assert "names 2 garments" in pair.ambiguous[0].describe()


def test_the_title_wins_over_the_description_and_columns_over_both() -> None:
    assert claims("Classic tee", "Pair it with jeans")["category"] == ("T-Shirt", "Tshirts")
    assert "Pants" in claims("Classic", "Slim jeans in dark wash")["category"]
    assert claims("Classic tee", "", {"category": "hoodie"})["category"] == ("Hoodie",)
    assert claims("Classic tee", "", {"color": "multicolour"})["colour"] == ("multi",)


def test_broad_words_accept_several_values_and_narrow_words_win() -> None:
    assert set(claims("Rain jacket")["category"]) >= {"Outwear", "Jackets"}
    assert claims("Parka jacket")["category"] == ("Outwear", "Jackets")


def test_each_claim_keeps_its_phrase_and_span() -> None:
    title = "Vintage Hooded Sweatshirt (navy)"
    claim = next(c for c in read_listing(VOCAB, title).claims if c.tag == "category")
    assert claim.phrase == "Hooded Sweatshirt" and title[claim.start : claim.end] == claim.phrase


def test_vocabulary_csv_round_trip_and_bad_rows() -> None:
    again = Vocabulary.from_csv(VOCAB.to_csv())
    assert again.rows == VOCAB.rows
    assert len(VOCAB.rows) > 800
    with pytest.raises(VocabularyError, match="missing: phrase"):
        Vocabulary.from_csv("tag,value\ncategory,Hoodie\n")
    with pytest.raises(VocabularyError, match="row 3: tag, value and phrase must all be filled"):
        Vocabulary.from_csv("tag,value,phrase\ncategory,Hoodie,hoodie\ncategory,,hoody\n")
    custom = Vocabulary.from_csv("tag,value,phrase\ncategory,Hoodie,kangaroo top\n")
    assert read_listing(custom, "Fleece kangaroo tops").claims[0].values == ("Hoodie",)
    assert custom.families == {} and custom.to_csv().startswith("tag,value,phrase\n")


def test_families_read_written_stored_and_refused_when_two() -> None:
    assert again_families(VOCAB) == VOCAB.families
    assert VOCAB.family("category", "T-Shirt") == VOCAB.family("category", "longsleeve") == "tops"
    assert VOCAB.family("category", "Shoes") == "footwear" and VOCAB.family("category", "Jeans") == "bottoms"
    assert VOCAB.family("sleeve_length", "full") is None
    every = {v for v in VOCAB.values("category")}
    assert {v for v in every if VOCAB.family("category", v) is None} == set()  # every category has one
    text = "tag,value,phrase,family\ncategory,Hoodie,hoodie,tops\ncategory,Hoodie,hoody,\ncategory,Hat,cap,\n"
    voc = Vocabulary.from_csv(text)
    assert voc.families == {("category", "Hoodie"): "tops"}
    assert voc.stored_rows() == [
        ["category", "Hoodie", "hoodie", "tops"],
        ["category", "Hoodie", "hoody", "tops"],
        ["category", "Hat", "cap"],
    ]
    assert Vocabulary(voc.stored_rows()).families == voc.families
    assert voc.fingerprint() != Vocabulary.from_csv(text.replace(",tops", ",")).fingerprint()
    with pytest.raises(VocabularyError, match="row 3: category Hoodie is already in the family 'tops'"):
        Vocabulary.from_csv("tag,value,phrase,family\ncategory,Hoodie,hoodie,tops\ncategory,Hoodie,hoody,outer\n")


def again_families(vocabulary: Vocabulary) -> dict[tuple[str, str], str]:
    """The families after a CSV round trip."""
    return Vocabulary.from_csv(vocabulary.to_csv()).families


def test_default_vocabulary_covers_the_catalogue_classes_and_default_schema() -> None:
    from core.project.labels import CLOTHING_LABELS, DEFAULT_ATTRIBUTE_SCHEMA

    classes = (
        "T-Shirt Longsleeve Pants Shoes Dress Shorts Shirt Outwear Skirt Body Polo Hat Undershirt Hoodie Blazer Top"
    )
    assert set(classes.split()) <= set(VOCAB.values("category"))
    assert set(CLOTHING_LABELS) <= set(VOCAB.values("category"))
    for tag, values in DEFAULT_ATTRIBUTE_SCHEMA.items():
        assert set(values) <= set(VOCAB.values(tag)), tag
