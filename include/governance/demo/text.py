"""Review sentences for the demo feed: templates, vocabularies and the edits that make duplicates.

A review is three clauses (opener, detail, closer) chosen for its sentiment and filled from
vocabularies, so unrelated reviews share few words (word-set Jaccard well under 0.5) while reviews
built on the same templates make hard negatives for near-duplicate detection. The vocabulary avoids
apostrophes, hyphens and commas so that every reasonable tokeniser agrees on the word set.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

CLASSES = ("positive", "neutral", "negative")
CLASS_PRIOR = (0.45, 0.25, 0.30)
MIN_WORDS, MAX_WORDS = 10, 30
_WORD = re.compile(r"[a-z0-9]+")

PRODUCTS: dict[str, tuple[str, ...]] = {
    "headphones": ("ear cushion", "battery", "microphone", "bluetooth pairing", "headband"),
    "blender": ("motor", "blade assembly", "pitcher", "lid", "speed dial"),
    "running shoes": ("sole", "lacing", "heel cushioning", "toe box", "insole"),
    "backpack": ("main zipper", "shoulder strap", "laptop sleeve", "side pocket", "buckle"),
    "coffee maker": ("water tank", "carafe", "brew timer", "filter basket", "warming plate"),
    "desk lamp": ("dimmer", "hinge", "weighted base", "power cable", "light panel"),
    "vacuum cleaner": ("suction", "dust bin", "filter", "brush roll", "hose"),
    "electric kettle": ("handle", "lid latch", "heating element", "auto shutoff", "spout"),
    "mechanical keyboard": ("keycap set", "switch feel", "backlight", "cable", "wrist rest"),
    "yoga mat": ("grip", "padding", "surface texture", "carrying strap", "edge"),
    "phone case": ("button cover", "camera cutout", "corner bumper", "matte finish", "belt clip"),
    "air fryer": ("basket", "timer knob", "display", "nonstick coating", "fan"),
    "office chair": ("armrest", "caster", "lumbar support", "seat cushion", "recline lever"),
    "smart watch": ("screen", "strap", "heart rate sensor", "charging dock", "step counter"),
    "water bottle": ("cap", "seal", "insulation", "straw", "paint job"),
    "camping tent": ("pole set", "rain fly", "door zipper", "stake kit", "floor"),
    "cordless drill": ("chuck", "battery pack", "torque clutch", "grip", "charger"),
    "toaster": ("slot width", "browning dial", "crumb tray", "lever", "defrost button"),
}

SLOTS: dict[str, tuple[str, ...]] = {
    "time": (
        "two weeks",
        "a month",
        "three months",
        "half a year",
        "a few days",
        "one weekend",
        "six weeks",
        "nearly a year",
        "ten days",
        "four months",
    ),
    "person": (
        "wife",
        "husband",
        "daughter",
        "son",
        "roommate",
        "parents",
        "grandmother",
        "brother",
        "sister",
        "partner",
        "best friend",
        "colleague",
    ),
    "use": (
        "every single morning",
        "on busy weekdays",
        "while travelling",
        "at the office",
        "in a small apartment",
        "on weekend trips",
        "after long shifts",
        "in the garage",
        "around the kids",
        "late at night",
    ),
    "audience": (
        "students on a budget",
        "busy parents",
        "first time buyers",
        "frequent travellers",
        "small households",
        "serious hobbyists",
        "remote workers",
        "older relatives",
        "casual users",
        "gift shoppers",
    ),
    "store": (
        "the online store",
        "a local shop",
        "an outlet sale",
        "a holiday deal",
        "a discount warehouse",
        "the brand website",
    ),
    "price": (
        "under forty dollars",
        "about sixty dollars",
        "less than twenty dollars",
        "nearly a hundred dollars",
        "the sale price",
        "roughly eighty dollars",
    ),
    "pos_adj": (
        "sturdy",
        "solid",
        "smooth",
        "reliable",
        "comfortable",
        "quiet",
        "responsive",
        "lightweight",
        "sleek",
        "precise",
        "generous",
        "durable",
    ),
    "neu_adj": (
        "adequate",
        "acceptable",
        "ordinary",
        "decent",
        "passable",
        "standard",
        "unremarkable",
        "serviceable",
        "basic",
        "middling",
    ),
    "neg_adj": (
        "flimsy",
        "loose",
        "noisy",
        "sticky",
        "wobbly",
        "cheap",
        "brittle",
        "uneven",
        "sluggish",
        "clunky",
        "scratchy",
        "fragile",
    ),
    "neg_event": (
        "cracked",
        "fell apart",
        "stopped responding",
        "started rattling",
        "began leaking",
        "came loose",
        "died completely",
        "overheated twice",
        "snapped off",
        "jammed",
    ),
    "annoyance": (
        "constant repairs",
        "endless troubleshooting",
        "wasted weekends",
        "chasing support tickets",
        "throwing money away",
        "daily disappointment",
    ),
}

OPENERS: dict[str, tuple[str, ...]] = {
    "positive": (
        "Bought this {product} for my {person} and we are both really impressed",
        "This {product} is exactly what I was hoping to find",
        "After {time} of daily use I still love this {product}",
        "Easily the best {product} I have owned so far",
        "I was skeptical at first but the {product} won me over",
        "Picked up the {product} from {store} and it exceeded my expectations",
        "Our household has used this {product} for {time} without a single complaint",
        "What a pleasant surprise this {product} turned out to be",
        "The {product} arrived early and worked perfectly straight out of the box",
        "I replaced my old {product} with this one and never looked back",
        "Five stars for this {product} from a very picky buyer",
        "Glad I finally upgraded to this {product} for {price}",
    ),
    "neutral": (
        "The {product} arrived on time and does roughly what it promises",
        "This {product} is fine for {price} but nothing more",
        "I have used the {product} for {time} and my feelings are mixed",
        "It is an ordinary {product} with no real surprises either way",
        "Bought the {product} from {store} and it is just okay",
        "My {person} thinks this {product} is decent and I mostly agree",
        "The {product} works as described although it feels a bit basic",
        "Three stars for a {product} that is neither great nor terrible",
        "Not much to say about this {product} after {time}",
        "The {product} does the job on most days",
        "Honestly this {product} is about what you would expect for {price}",
        "A perfectly average {product} that I use {use}",
    ),
    "negative": (
        "The {product} stopped working after only {time}",
        "Really disappointed with this {product} from {store}",
        "I returned the {product} after {time} of constant frustration",
        "Do not waste your money on this {product}",
        "My {person} gave up on this {product} within days",
        "This {product} looked nice in the photos but fell short in person",
        "Worst {product} I have bought in a long time",
        "Paid {price} for this {product} and regret every cent",
        "The {product} showed up scratched and went downhill from there",
        "I wanted to like this {product} but it let me down {use}",
        "One star for a {product} that broke before the return window closed",
        "Save yourself the trouble and skip this {product}",
    ),
}

DETAILS: dict[str, tuple[str, ...]] = {
    "positive": (
        "the {feature} is {pos_adj} and feels {pos_adj2}",
        "the {feature} works flawlessly even when I use it {use}",
        "I especially like how {pos_adj} the {feature} is",
        "the {feature} and the {feature2} are both excellent",
        "setup took two minutes and the {feature} has been {pos_adj} ever since",
        "even the {feature} feels premium for the price",
        "the {feature} holds up beautifully {use}",
        "my {person} keeps borrowing it because the {feature} is so {pos_adj}",
        "the {feature} is a real highlight compared with cheaper models",
        "it handles everything I throw at it and the {feature} never misses a beat",
    ),
    "neutral": (
        "the {feature} is {neu_adj} but the {feature2} could be better",
        "the {feature} is {neu_adj} and the rest is fine",
        "the {feature} works most of the time although it can be fiddly",
        "I like the {feature} but I am less sure about the {feature2}",
        "the {feature} feels {neu_adj} which is fair for what I paid",
        "nothing stands out apart from a slightly {neu_adj} {feature}",
        "the {feature} needed some adjusting before it felt right",
        "it is usable {use} though the {feature} is nothing special",
        "the {feature} is a little {neg_adj} but still manageable",
        "some days the {feature} behaves and some days it does not",
    ),
    "negative": (
        "the {feature} {neg_event} within {time}",
        "the {feature} feels {neg_adj} and the {feature2} is even worse",
        "the {feature} is so {neg_adj} that I stopped using it {use}",
        "first the {feature} {neg_event} and then the {feature2} followed",
        "the {feature} never worked properly from day one",
        "the {feature} is {neg_adj} and nothing like the description",
        "a replacement arrived and its {feature} {neg_event} as well",
        "the {feature} makes it useless {use}",
        "the {feature} is badly designed and the {feature2} feels {neg_adj}",
        "every week something new goes wrong with the {feature}",
    ),
}

CLOSERS: dict[str, tuple[str, ...]] = {
    "positive": (
        "would happily recommend it to {audience}",
        "worth every penny and I would buy it again",
        "already ordered a second one as a gift for my {person}",
        "highly recommended for {audience}",
        "it has made my routine so much easier",
        "great value and fast shipping too",
        "I will be buying from this brand again",
        "cannot think of a single thing I would change",
    ),
    "neutral": (
        "it might suit {audience} who do not need much more",
        "not sure I would buy it again at full price",
        "it is fine if your expectations are modest",
        "I would wait for a discount before buying",
        "good enough for now but I will keep looking",
        "a decent option for {audience} I suppose",
        "shipping was quick which is something",
        "I might upgrade next year",
    ),
    "negative": (
        "customer support never answered my emails",
        "avoid it unless you enjoy {annoyance}",
        "I would not recommend it to {audience}",
        "the refund process was a nightmare as well",
        "back in the box it goes",
        "look elsewhere if you value your money",
        "I expected far more from this brand",
        "still waiting for a replacement {time} later",
    ),
}

# Words for near-duplicate edits: none of them appears in the templates above.
INSERTABLE = (
    "honestly",
    "truly",
    "definitely",
    "seriously",
    "certainly",
    "frankly",
    "overall",
    "genuinely",
    "basically",
    "admittedly",
)
SUBSTITUTES = (
    "product",
    "item",
    "purchase",
    "thing",
    "gadget",
    "unit",
    "model",
    "device",
    "piece",
    "buy",
)

SHORT_TEXTS = ("ok", "meh", "Great!", "bad buy", "five stars", "nope", "fine I guess", "A+")


@dataclass(frozen=True)
class Review:
    """One generated review and how it was built, so that relatives can be derived from it."""

    text: str
    label: str
    product: str
    template: tuple[int, int, int]
    fills: tuple[tuple[str, str], ...]

    @property
    def clause_keys(self) -> tuple[tuple[str, str, int, int], ...]:
        """Its pairs of clause templates. Reviews sharing at most one clause template stay under
        a word-set Jaccard of about 0.56, so only reviews sharing a pair can be near duplicates."""
        opener, detail, closer = self.template
        return (
            ("od", self.label, opener, detail),
            ("oc", self.label, opener, closer),
            ("dc", self.label, detail, closer),
        )


def normalise(text: str) -> str:
    """Text up to case, whitespace and punctuation: equal values are exact duplicates."""
    return " ".join(_WORD.findall(text.lower()))


def word_set(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _draw_fills(rng: random.Random, product: str) -> dict[str, str]:
    fills = {name: rng.choice(values) for name, values in SLOTS.items()}
    fills["pos_adj2"] = rng.choice([a for a in SLOTS["pos_adj"] if a != fills["pos_adj"]])
    feature, feature2 = rng.sample(PRODUCTS[product], 2)
    fills.update(product=product, feature=feature, feature2=feature2)
    return fills


def _render(label: str, template: tuple[int, int, int], fills: dict[str, str]) -> str:
    opener, detail, closer = template
    clauses = (
        OPENERS[label][opener].format(**fills),
        DETAILS[label][detail].format(**fills),
        CLOSERS[label][closer].format(**fills),
    )
    return " ".join(clause[0].upper() + clause[1:] + "." for clause in clauses)


def _build(
    label: str, product: str, template: tuple[int, int, int], fills: dict[str, str]
) -> Review:
    return Review(
        text=_render(label, template, fills),
        label=label,
        product=product,
        template=template,
        fills=tuple(sorted(fills.items())),
    )


def _word_count_ok(text: str) -> bool:
    return MIN_WORDS <= len(text.split()) <= MAX_WORDS


def compose_review(rng: random.Random, label: str) -> Review:
    """A fresh review of the given sentiment with 10 to 30 words."""
    return review_of(rng, label, rng.choice(sorted(PRODUCTS)))


def review_of(rng: random.Random, label: str, product: str) -> Review:
    """A fresh review of the given sentiment and product with 10 to 30 words."""
    while True:
        template = (
            rng.randrange(len(OPENERS[label])),
            rng.randrange(len(DETAILS[label])),
            rng.randrange(len(CLOSERS[label])),
        )
        review = _build(label, product, template, _draw_fills(rng, product))
        if _word_count_ok(review.text):
            return review


def refill_review(rng: random.Random, source: Review) -> Review:
    """Same product and templates, other slot values: a distinct review that looks alike."""
    while True:
        review = _build(
            source.label, source.product, source.template, _draw_fills(rng, source.product)
        )
        if _word_count_ok(review.text):
            return review


def respell(rng: random.Random, text: str) -> str:
    """The same text up to case, whitespace and punctuation (an exact duplicate)."""
    variants = (
        text,
        text.upper(),
        text.lower(),
        "  " + text.replace(". ", ".   ") + " ",
        text.rstrip(".") + "!!",
        text.replace(".", ""),
    )
    return rng.choice(variants)


def _edit_once(rng: random.Random, words: list[str]) -> list[str]:
    """Insert, substitute or delete one word, keeping the punctuation glued to its neighbour."""
    present = {w.strip(string.punctuation).lower() for w in words}
    operation = rng.choice(("insert", "substitute", "delete"))
    position = rng.randrange(1, len(words))
    if operation == "insert":
        word = rng.choice([w for w in INSERTABLE if w not in present])
        return [*words[:position], word, *words[position:]]
    core = words[position].rstrip(string.punctuation)
    tail = words[position][len(core) :]
    if operation == "substitute":
        word = rng.choice([w for w in SUBSTITUTES if w not in present])
        return [*words[:position], word + tail, *words[position + 1 :]]
    if tail:  # deleting a sentence end would merge two sentences: move its full stop back
        return [*words[: position - 1], words[position - 1] + tail, *words[position + 1 :]]
    return [*words[:position], *words[position + 1 :]]


def perturb(rng: random.Random, text: str, edits: int) -> str:
    """One or two word edits: a near duplicate when the text is long enough."""
    words = text.split()
    for _ in range(edits):
        words = _edit_once(rng, words)
    return " ".join(words)
