"""Which text encoding one landing file is in, when the contract says ``source.encoding: auto``.

Exports from different tools land side by side: UTF-8 from one, Windows-1252 from a spreadsheet,
so the encoding is decided per file. A file whose first MiB is valid UTF-8 is UTF-8. A UTF-8
file with a few broken lines stays UTF-8 (its broken lines are quarantined one by one). Anything
else is given to charset-normalizer, restricted to the contract's ``allowed_encodings``; a file
it cannot place confidently is quarantined whole, never half-decoded.
"""

from __future__ import annotations

import codecs
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


@dataclass(frozen=True)
class _Lines:
    """The non-blank lines of a file's first MiB by how UTF-8 reads them."""

    total: int
    non_ascii: list[bytes]  # valid UTF-8 with at least one multi-byte character
    broken: list[bytes]  # not valid UTF-8

    @property
    def share(self) -> float:
        """Of the lines, those UTF-8 decodes: the confidence of reading the file as UTF-8."""
        return round(1.0 - len(self.broken) / self.total, 4) if self.total else 1.0


def _lines(head: bytes, whole: bool) -> _Lines:
    lines = head.split(b"\n")
    if not whole and len(lines) > 1:
        lines = lines[:-1]  # cut at the sample's end, perhaps inside a character
    total = 0
    non_ascii: list[bytes] = []
    broken: list[bytes] = []
    for line in lines:
        if not line.strip():
            continue
        total += 1
        if line.isascii():
            continue
        try:
            line.decode(UTF8)
        except UnicodeDecodeError:
            broken.append(line)
        else:
            non_ascii.append(line)
    return _Lines(total, non_ascii, broken)


def _legacy(broken: list[bytes], spec: SourceSpec) -> Encoding | None:
    """The allowed legacy encoding that reads the lines UTF-8 cannot as text, if one does so
    with the contract's confidence (1 - charset-normalizer's chaos)."""
    import charset_normalizer

    legacy = [e for e in spec.allowed_encodings if codec_name(e) != UTF8]
    if not legacy:
        return None
    best = charset_normalizer.from_bytes(b"\n".join(broken), cp_isolation=legacy).best()
    if best is None:
        return None
    confidence = round(1.0 - float(best.chaos), 4)
    if confidence < spec.min_encoding_confidence:
        return None
    return Encoding(codec_name(best.encoding), confidence, "charset-normalizer")


def detect(head: bytes, spec: SourceSpec, whole: bool = True) -> Encoding:
    """The encoding of a file whose data starts with ``head`` (its first MiB; ``whole``: all
    of it), decided on its lines.

    Lines that are valid UTF-8 with multi-byte characters make it UTF-8 (legacy text almost
    never forms them), its broken lines rejected one by one. Without them, an allowed legacy
    encoding that reads the broken lines as text wins; failing that, UTF-8 with those lines
    rejected, if they are few enough (``min_encoding_confidence`` of the lines decode). Anything
    else is refused whole.
    """
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
    lines = _lines(head, whole)
    allows_utf8 = any(codec_name(e) == UTF8 for e in spec.allowed_encodings)
    if not allows_utf8:
        suspects = lines.broken + lines.non_ascii
        if not suspects:  # ASCII, which every allowed encoding reads alike
            return Encoding(codec_name(spec.allowed_encodings[0]), 1.0, "ASCII")
        legacy = _legacy(suspects, spec)
    elif not lines.broken:
        return Encoding(UTF8, 1.0, "valid UTF-8")
    else:
        legacy = None if lines.non_ascii else _legacy(lines.broken, spec)
    if legacy is not None:
        return legacy
    if allows_utf8 and lines.share >= spec.min_encoding_confidence:
        return Encoding(UTF8, lines.share, "UTF-8 with undecodable lines")
    legacy_allowed = any(codec_name(e) != UTF8 for e in spec.allowed_encodings)
    check = ENCODING_UNCERTAIN if legacy_allowed else ENCODING_NOT_ALLOWED
    raise Unreadable(
        refusal(
            check,
            f"{len(lines.broken)} of {lines.total} lines are not UTF-8, and no allowed encoding "
            f"({', '.join(spec.allowed_encodings)}) reads them as text with confidence "
            f">= {spec.min_encoding_confidence}",
        )
    )
