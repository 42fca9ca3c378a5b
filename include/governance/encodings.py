"""Which text encoding one landing file is in, when the contract says ``source.encoding: auto``.

Exports from different tools land side by side: UTF-8 from one, Windows-1252 from a spreadsheet,
so the encoding is decided per file. A file whose first MiB is valid UTF-8 is UTF-8. A UTF-8
file with a few broken lines stays UTF-8 (its broken lines are quarantined one by one). Anything
else is given to charset-normalizer, restricted to the contract's ``allowed_encodings``; a file
it cannot place confidently is quarantined whole, never half-decoded.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from governance.contracts import AUTO_ENCODING, SourceSpec
from governance.landing import Unreadable, refusal

ENCODING_NOT_ALLOWED = "encoding_not_allowed"
ENCODING_UNCERTAIN = "encoding_uncertain"
UTF8 = "utf-8"
# Byte order marks of encodings that are not ASCII-compatible (lines cannot be split on b"\n").
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_VALID_NON_ASCII = re.compile("[^\x00-\x7f\ufffd]")


@dataclass(frozen=True)
class Encoding:
    """The codec a file is decoded with, how sure the choice is (None: the contract named it)
    and how it was made."""

    name: str
    confidence: float | None
    method: str


def codec_name(name: str) -> str:
    """Python's canonical name of a codec (``latin-1`` and ``iso8859_1`` are one encoding)."""
    return codecs.lookup(name).name


def _utf8_share(head: bytes) -> tuple[int, int]:
    """Valid non-ASCII characters and undecodable bytes in a UTF-8 reading of ``head``."""
    text = codecs.getincrementaldecoder(UTF8)("replace").decode(head, final=False)
    broken = text.count("\ufffd") - head.count("\ufffd".encode())
    return len(_VALID_NON_ASCII.findall(text)), broken


def _legacy(head: bytes, spec: SourceSpec, name: str) -> Encoding:
    import charset_normalizer

    legacy = [e for e in spec.allowed_encodings if codec_name(e) != UTF8]
    best = (
        charset_normalizer.from_bytes(head, cp_isolation=legacy or None).best() if legacy else None
    )
    if not legacy:
        raise Unreadable(
            refusal(ENCODING_NOT_ALLOWED, "not UTF-8, the only encoding source allows")
        )
    if best is None:
        raise Unreadable(
            refusal(
                ENCODING_UNCERTAIN,
                f"not UTF-8, and none of the allowed encodings ({', '.join(legacy)}) reads it "
                "as text",
            )
        )
    confidence = round(1.0 - float(best.chaos), 4)
    if confidence < spec.min_encoding_confidence:
        raise Unreadable(
            refusal(
                ENCODING_UNCERTAIN,
                f"{name}: best guess {best.encoding} with confidence {confidence:.2f} < "
                f"source.min_encoding_confidence {spec.min_encoding_confidence}",
            )
        )
    return Encoding(codec_name(best.encoding), confidence, "charset-normalizer")


def detect(head: bytes, spec: SourceSpec, name: str) -> Encoding:
    """The encoding of a file whose data starts with ``head`` (its first MiB)."""
    if spec.encoding != AUTO_ENCODING:
        return Encoding(codec_name(spec.encoding), None, "contract")
    wide = next((enc for bom, enc in _WIDE_BOMS if head.startswith(bom)), None)
    if wide:
        raise Unreadable(
            refusal(
                ENCODING_NOT_ALLOWED,
                f"{wide} (a byte order mark) is not ASCII-compatible; export the file as UTF-8",
            )
        )
    valid, broken = _utf8_share(head)
    allows_utf8 = any(codec_name(e) == UTF8 for e in spec.allowed_encodings)
    if allows_utf8 and broken == 0:
        return Encoding(UTF8, 1.0, "valid UTF-8")
    if allows_utf8 and valid >= broken > 0 and valid:
        # As much valid multi-byte UTF-8 as broken bytes: legacy text almost never holds valid
        # UTF-8 sequences, so this is UTF-8 with damaged lines, rejected line by line.
        return Encoding(UTF8, round(valid / (valid + broken), 4), "UTF-8 with undecodable lines")
    return _legacy(head, spec, name)
