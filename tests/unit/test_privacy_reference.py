"""The privacy scan against presidio-analyzer's recognizers (the reference library), on
generated reviews with injected values of known entity and on real SMS messages."""

from __future__ import annotations

import pandas as pd
import pytest

from governance import privacy as P
from governance.demo.pii import SCAN_EVERYTHING, labelled_corpus
from governance.privacy_reference import PRESIDIO_ENTITIES, presidio_scanner
from tests.conftest import SMS_SPAM_TSV

# presidio has no generic secret recognizer
SPEC = SCAN_EVERYTHING.model_copy(update={"secret": "off"})


@pytest.fixture(scope="module")
def presidio():
    return presidio_scanner(SPEC.phone_regions)


def pairs_found(texts: list[str], presidio) -> tuple[set, set]:
    ours = {(f.row, f.entity) for f in P.scan(pd.Series(texts, dtype="str"), SPEC).findings}
    theirs = {(row, entity) for row, text in enumerate(texts) for entity in presidio(text)}
    return ours, theirs


def test_on_injected_values_ours_finds_what_presidio_finds_and_claims_no_more(presidio) -> None:
    texts, truth = labelled_corpus(3000, 0.1, seed=7)
    truth = {pair for pair in truth if pair[1] in PRESIDIO_ENTITIES}
    ours, theirs = pairs_found(texts, presidio)
    assert len(truth) > 200
    assert truth <= theirs  # the reference finds every injected value...
    assert ours == truth  # ... and so do we, with nothing else
    extra = theirs - truth  # presidio's own false positives (card numbers read in IBANs)
    assert len(extra) < 0.05 * len(truth)


def test_on_real_messages_ours_agrees_with_presidio(presidio) -> None:
    texts = pd.read_csv(SMS_SPAM_TSV, sep="\t", header=None, names=["label", "text"])["text"]
    ours, theirs = pairs_found(texts.tolist(), presidio)
    phones = {pair for pair in ours if pair[1] == "phone"}
    assert len(phones) == 389 and phones == {pair for pair in theirs if pair[1] == "phone"}
    emails = {pair for pair in theirs if pair[1] == "email"}
    assert emails and emails <= ours
