"""presidio-analyzer's pattern recognizers, the reference the privacy scan is compared with in
tests and ``bench/bench_privacy.py``; nothing in the nightly run imports it.

The recognizers are used directly, without presidio's NLP engine, so no spaCy model is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# presidio's entity names for ours (presidio has no generic secret recognizer)
PRESIDIO_ENTITIES = {
    "email": "EMAIL_ADDRESS",
    "phone": "PHONE_NUMBER",
    "credit_card": "CREDIT_CARD",
    "iban": "IBAN_CODE",
    "ip_address": "IP_ADDRESS",
    "us_ssn": "US_SSN",
}


def presidio_scanner(phone_regions: Sequence[str]) -> Callable[[str], list[str]]:
    """A function from a text to the entities presidio finds in it (ours names, any score
    above zero, as presidio's analyzer returns them by default)."""
    import tldextract
    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    offline = tldextract.TLDExtract(suffix_list_urls=())

    class OfflineEmailRecognizer(EmailRecognizer):
        """presidio's check of the domain, on tldextract's bundled public suffix list: the
        default would fetch the list from the network."""

        def validate_result(self, pattern_text: str) -> bool:
            return offline(pattern_text).fqdn != ""

    recognizers: list[PatternRecognizer | PhoneRecognizer] = [
        OfflineEmailRecognizer(),
        PhoneRecognizer(supported_regions=list(phone_regions)),
        CreditCardRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
    ]
    ours = {name: entity for entity, name in PRESIDIO_ENTITIES.items()}

    def scan(text: str) -> list[str]:
        return [
            ours[result.entity_type]
            for recognizer in recognizers
            for result in recognizer.analyze(text, recognizer.supported_entities)
            if result.score > 0
        ]

    return scan
