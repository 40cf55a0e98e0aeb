"""The catalogue importer: IRO/SIS exports (CSV or JSON) of courses and of the institution profile.

Pure functions, no IO: the caller reads the file and passes its text (or bytes); every function
returns values and problems. A file is validated whole: every row is checked and every problem is
reported with the line it is on, and a file with any problem yields nothing to import.

The rules are written down for integrators in docs/import-format.md.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sseaun.v1.catalogue_pb2 import (
    Course,
    CourseLevel,
    InstitutionProfile,
    OrganisationalUnit,
    RecordHeader,
)
from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.types_pb2 import CreditValue, LocalizedText, MultilingualText

from . import _payload_types as types
from ._envelope import sign_envelope
from ._errors import FieldProblem, ProtocolError, Reason
from ._keys import Signer
from ._schemes import CREDIT_SCHEMES
from ._time import to_timestamp

__all__ = [
    "COURSES_PARENT",
    "COURSE_FIELDS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SCHEMES",
    "MAX_CODE_LENGTH",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_TITLE_LENGTH",
    "PROFILE_FIELDS",
    "CourseRow",
    "ParsedCourses",
    "ParsedProfile",
    "RowProblem",
    "batch_id",
    "batches",
    "course_content_digest",
    "course_record_name",
    "file_digest",
    "guess_format",
    "parse_courses",
    "parse_profile",
    "profile_record_name",
    "sign_course",
    "sign_profile",
    "validate_course",
    "validate_profile",
]

Format = Literal["csv", "json"]

#: Credit scheme IDs known without a manifest, one per system of the regional table
#: (shared/reference/regional_domain.md §2). A node passes the IDs its manifest lists instead.
#: Credit schemes a course may use: every scheme of the conversion tables that is a credit unit
#: (AUN-ACTS is a transfer framework, not a unit).
DEFAULT_SCHEMES: frozenset[str] = frozenset(CREDIT_SCHEMES) - {"aun-acts"}

#: Rows per import batch unless the caller says otherwise.
DEFAULT_BATCH_SIZE = 100
MAX_CODE_LENGTH = 64
MAX_TITLE_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 10_000
_MAX_TAG_LENGTH = 64
_MAX_URL_LENGTH = 2000

#: The columns (CSV) or keys (JSON) of a course export; title and description take ":<lang>".
COURSE_FIELDS: tuple[str, ...] = (
    "code",
    "title:<lang>",
    "description:<lang>",
    "credits",
    "credit_scheme",
    "level",
    "languages",
    "unit",
    "isced_f",
)
#: The columns (CSV) or keys (JSON) of an institution profile; name takes ":<lang>".
PROFILE_FIELDS: tuple[str, ...] = (
    "institution_id",
    "name:<lang>",
    "country",
    "website",
    "languages_of_instruction",
    "credit_scheme",
    "grade_scale",
    "units",
)
_COURSE_SIMPLE = frozenset(
    {"code", "credits", "credit_scheme", "level", "languages", "unit", "isced_f"}
)
_COURSE_TEXTS = frozenset({"title", "description"})
_PROFILE_SIMPLE = frozenset(
    {
        "institution_id",
        "country",
        "website",
        "languages_of_instruction",
        "credit_scheme",
        "grade_scale",
        "units",
    }
)
_PROFILE_TEXTS = frozenset({"name"})
_UNIT_SIMPLE = frozenset({"code", "parent"})
_UNIT_TEXTS = frozenset({"name"})

_LEVELS: Mapping[str, CourseLevel.ValueType] = {
    "short-cycle": CourseLevel.COURSE_LEVEL_SHORT_CYCLE,
    "bachelor": CourseLevel.COURSE_LEVEL_BACHELOR,
    "master": CourseLevel.COURSE_LEVEL_MASTER,
    "doctoral": CourseLevel.COURSE_LEVEL_DOCTORAL,
}

# ISCED-F 2013 (UNESCO UIS): each narrow field with the last digits of its detailed fields.
# Besides those, a narrow field + "0" (not further defined) or + "9" (not elsewhere classified),
# a broad field + "00", "88" (inter-disciplinary) or "99", and 9999 (field unknown) are valid.
_ISCED_NARROW = {
    "001": "1", "002": "1", "003": "1", "011": "1234", "021": "12345", "022": "123",
    "023": "12", "031": "1234", "032": "12", "041": "1234567", "042": "1", "051": "12",
    "052": "12", "053": "123", "054": "12", "061": "123", "071": "123456", "072": "1234",
    "073": "12", "081": "12", "082": "1", "083": "1", "084": "1", "091": "1234567",
    "092": "123", "101": "12345", "102": "12", "103": "1", "104": "1",
}  # fmt: skip
_ISCED_VALID = frozenset(
    {narrow + last for narrow, lasts in _ISCED_NARROW.items() for last in lasts + "09"}
    | {narrow[:2] + tail for narrow in _ISCED_NARROW for tail in ("00", "88", "99")}
    | {"9999"}
)

_INSTITUTION_ID = re.compile(
    r"^(?=.{3,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_NETWORK_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
_SCHEME_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,3})(\.[0-9]{1,3})?$")
_DIGITS = re.compile(r"^[0-9]+$")
_LANGTAG = re.compile(
    r"^[A-Za-z]{2,3}(-[A-Za-z]{3}){0,3}"  # language, extlang
    r"(-[A-Za-z]{4})?"  # script
    r"(-([A-Za-z]{2}|[0-9]{3}))?"  # region
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"  # variants
    r"(-[0-9A-WYZa-wyz](-[A-Za-z0-9]{2,8})+)*"  # extensions
    r"(-[Xx](-[A-Za-z0-9]{1,8})+)?$"  # private use
)
_PRIVATE_TAG = re.compile(r"^[Xx](-[A-Za-z0-9]{1,8})+$")
_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_URL = re.compile(
    rf"^https://(?P<host>{_HOST_LABEL}(\.{_HOST_LABEL})+)"
    r"(:(?P<port>[0-9]{1,5}))?"
    r"(?P<rest>[/?#][!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]*)?$"
)
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """One problem of an import file.

    Attributes:
        line: the physical line of the file where the row (CSV) or the JSON value starts; 1 for
            the header and for problems of the file as a whole.
        field: the column or key, e.g. "credits", "title:en", "units[2].parent"; "" for the row
            or the file.
        message: English text saying what is wrong and how to put it right.
        item: for JSON, the 1-based position of the course in the list; None otherwise.
    """

    line: int
    field: str
    message: str
    item: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (item {self.item})" if self.item is not None else "")
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


@dataclass(frozen=True)
class CourseRow:
    """One valid course of a file: where it is and the Course message built from it (no header)."""

    line: int
    course: Course
    item: int | None = None


@dataclass(frozen=True)
class ParsedCourses:
    """The result of parse_courses.

    ``rows`` is empty whenever ``problems`` is not: a file with any problem imports nothing.
    ``row_count`` is the number of (non-blank) course rows or items the file holds.
    """

    rows: list[CourseRow]
    problems: list[RowProblem]
    row_count: int

    @property
    def ok(self) -> bool:
        """True when the file has no problem, so its rows may be imported."""
        return not self.problems


@dataclass(frozen=True)
class ParsedProfile:
    """The result of parse_profile: the profile (no header), or None when there are problems."""

    profile: InstitutionProfile | None
    problems: list[RowProblem]

    @property
    def ok(self) -> bool:
        """True when the file has no problem, so the profile may be imported."""
        return not self.problems


# --- single values ---------------------------------------------------------------------------


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _show(value: str, limit: int = 40) -> str:
    """A value quoted for a message, cut short when long."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def _code_error(code: str, what: str = "a course code") -> str | None:
    """Why code (already stripped) is not a valid course or unit code, or None."""
    if not code:
        return "required"
    if len(code) > MAX_CODE_LENGTH:
        return f"{what} has at most {MAX_CODE_LENGTH} characters (got {len(code)})"
    first = unicodedata.category(code[0])
    if not (first.startswith("L") or first == "Nd"):
        return f"{what} must start with a letter or a digit (got {_show(code)})"
    if code.endswith(" "):
        return f"{what} must not end with a space (got {_show(code)})"
    for ch in code:
        category = unicodedata.category(ch)
        if not (category[0] in "LM" or category == "Nd" or ch in "-_./ "):
            return (
                f"{what} may hold only letters, digits, '-', '_', '.', '/' and spaces "
                f"(got {ch!r} in {_show(code)})"
            )
    return None


def _text_error(text: str, *, limit: int, multiline: bool) -> str | None:
    """Why a title, description or name (already stripped) cannot be stored, or None."""
    if len(text) > limit:
        return f"at most {limit} characters (got {len(text)})"
    if "\ufffd" in text:
        return (
            "contains U+FFFD (�), the mark of text read with the wrong encoding: "
            "save the file as UTF-8"
        )
    for ch in text:
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in "\t\n\r"):
            return f"contains the control character U+{ord(ch):04X}"
    return None


def _canonical_tag(tag: str) -> str:
    """The conventional case of a well-formed BCP 47 tag (RFC 5646 §2.1.1): zh-Hans-CN."""
    parts = tag.split("-")
    out = [parts[0].lower()]
    after_singleton = parts[0].lower() == "x"
    for part in parts[1:]:
        if after_singleton or len(part) == 1:
            after_singleton = True
            out.append(part.lower())
        elif len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


def _tag_error(tag: str) -> str | None:
    """Why tag is not a well-formed BCP 47 language tag, or None."""
    if "_" in tag:
        return f"{_show(tag)} is not a BCP 47 language tag: write '-' not '_' (e.g. zh-Hans, en-GB)"
    if (
        len(tag) > _MAX_TAG_LENGTH
        or not tag.isascii()
        or not (_LANGTAG.fullmatch(tag) or _PRIVATE_TAG.fullmatch(tag))
    ):
        return f"{_show(tag)} is not a BCP 47 language tag (e.g. en, zh-Hans, th, bn, ms)"
    return None


def _credits_error(value: str) -> str | None:
    """Why value is not a decimal credit amount greater than 0, or None."""
    if re.fullmatch(r"[0-9]+,[0-9]+", value):
        return (
            f"write the decimal point as '.', e.g. {value.replace(',', '.')} (got {_show(value)})"
        )
    if re.fullmatch(r"-[0-9]+(\.[0-9]+)?", value):
        return f"must be greater than 0 (got {_show(value)})"
    if not _DECIMAL.fullmatch(value):
        return (
            "must be a decimal number such as 3 or 7.5: digits with an optional '.', "
            f"at most 4 digits before and 3 after it (got {_show(value)})"
        )
    if not value.strip("0."):
        return f"must be greater than 0 (got {_show(value)})"
    return None


def _scheme_error(
    scheme: str, known: Collection[str] | None, what: str = "credit scheme"
) -> str | None:
    if not _SCHEME_ID.fullmatch(scheme):
        return f"{_show(scheme)} is not a {what} ID (lower-case letters, digits, '.' and '-')"
    if known is not None and scheme not in known:
        listed = ", ".join(sorted(known)[:20])
        return f"unknown {what} {_show(scheme)}; known: {listed}"
    return None


def _isced_error(code: str) -> str | None:
    if _DIGITS.fullmatch(code) and len(code) == 3:
        return (
            f"an ISCED-F 2013 code has 4 digits; a spreadsheet may have dropped a leading zero: "
            f"write 0{code} (got {_show(code)})"
        )
    if not (_DIGITS.fullmatch(code) and len(code) == 4):
        return f"must be a 4-digit ISCED-F 2013 field code such as 0613 (got {_show(code)})"
    if code not in _ISCED_VALID:
        return f"{_show(code)} is not an ISCED-F 2013 field code"
    return None


def _level_value(text: str) -> CourseLevel.ValueType | None:
    return _LEVELS.get(re.sub(r"[\s_]+", "-", text.lower()))


def _website_error(url: str) -> str | None:
    if len(url) > _MAX_URL_LENGTH:
        return f"at most {_MAX_URL_LENGTH} characters"
    if not url.lower().startswith("https://"):
        return f"must be an https:// URL (got {_show(url)})"
    if not url.isascii():
        return f"write the address in ASCII (punycode xn-- host, %-encoded path) (got {_show(url)})"
    match = _URL.fullmatch(url)
    if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
        return f"not a valid https URL (got {_show(url)})"
    return None


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;,]", text) if part.strip()]


def _line_of_index(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _decode(data: str | bytes) -> tuple[str | None, RowProblem | None]:
    """The text of an input without a BOM, or the problem that makes it unreadable."""
    if isinstance(data, bytes):
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return None, RowProblem(
                1, "", "the file is UTF-16, not UTF-8: save it as UTF-8 (in Excel: CSV UTF-8)"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            return None, RowProblem(
                1,
                "",
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line}): "
                "save it as UTF-8 (in Excel: CSV UTF-8)",
            )
    else:
        text = data
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            line = _line_of_index(text, exc.start)
            return None, RowProblem(
                1, "", f"the text holds characters that are not Unicode (on line {line})"
            )
    return text.removeprefix("\ufeff"), None


@dataclass
class _Key:
    """A column name or JSON key, parsed: a field kind with its language, or an error."""

    kind: str = ""
    lang: str | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.lang}" if self.lang else self.kind


def _parse_key(
    raw: str, simple: frozenset[str], texts: frozenset[str], *, noun: str = "column"
) -> _Key:
    name, colon, lang = raw.strip().partition(":")
    kind = name.strip().lower()
    lang = lang.strip()
    if kind in texts:
        if not colon:
            return _Key(kind)
        error = _tag_error(lang)
        if error:
            return _Key(kind, error=f"{noun} {_show(raw)}: {error}")
        return _Key(kind, _canonical_tag(lang))
    if kind in simple:
        if colon:
            return _Key(error=f"{noun} {_show(raw)}: {kind} takes no language")
        return _Key(kind)
    known = ", ".join([*sorted(simple), *(f"{t}:<lang>" for t in sorted(texts))])
    return _Key(error=f"unknown {noun} {_show(raw)}; the {noun}s are {known}")


# --- reading CSV and JSON --------------------------------------------------------------------


def _read_csv(text: str) -> tuple[list[tuple[int, list[str]]], list[RowProblem]]:
    """The non-blank rows of a CSV text with the physical line each starts on."""
    first_line = re.split(r"[\r\n]", text, maxsplit=1)[0]
    delimiter = next((d for d in (",", "\t", ";") if d in first_line), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    problems: list[RowProblem] = []
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(previous + 1, "", f"not valid CSV: {exc}"))
            previous = reader.line_num
            continue
        start, previous = previous + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            rows.append((start, cells))
    return rows, problems


class _Number(str):
    """A JSON number, kept exactly as written (never turned into a float)."""

    __slots__ = ()


class _Object(dict[str, object]):
    """A JSON object that remembers the keys it held more than once."""

    duplicates: list[str]


def _object_pairs(pairs: list[tuple[str, object]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_float=_Number,
    parse_int=_Number,
    parse_constant=_Number,
)


class _JsonError(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


@dataclass
class _Member:
    """One key of a JSON object, where its value starts, and its value (or its array's items)."""

    key: str
    pos: int
    value: object
    items: list[tuple[int, object]] | None = None


class _Scanner:
    """A JSON reader that knows where each value starts, for the outer levels only.

    Inner values are decoded whole by the json module; numbers stay as written (_Number) and
    objects remember duplicated keys (_Object).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def column(self, pos: int) -> int:
        index = bisect.bisect_left(self._newlines, pos)
        return pos - (self._newlines[index - 1] if index else -1)

    def skip(self, pos: int) -> int:
        text, n = self.text, len(self.text)
        while pos < n and text[pos] in " \t\n\r":
            pos += 1
        return pos

    def at(self, pos: int, char: str) -> bool:
        return self.text.startswith(char, pos)

    def value(self, pos: int) -> tuple[object, int]:
        try:
            return _DECODER.raw_decode(self.text, pos)
        except json.JSONDecodeError as exc:
            raise _JsonError(exc.pos, exc.msg) from exc
        except RecursionError as exc:
            raise _JsonError(pos, "nested too deeply") from exc

    def array(self, pos: int) -> tuple[list[tuple[int, object]], int]:
        """The items of the array at pos with their start positions, and the end position."""
        items: list[tuple[int, object]] = []
        pos = self.skip(pos + 1)
        if self.at(pos, "]"):
            return items, pos + 1
        while True:
            start = pos
            value, pos = self.value(pos)
            items.append((start, value))
            pos = self.skip(pos)
            if self.at(pos, ","):
                pos = self.skip(pos + 1)
            elif self.at(pos, "]"):
                return items, pos + 1
            else:
                raise _JsonError(pos, "Expecting ',' delimiter or ']'")

    def object(self, pos: int, expand: frozenset[str]) -> tuple[list[_Member], int]:
        """The members of the object at pos; arrays under keys in expand are read item by item."""
        members: list[_Member] = []
        pos = self.skip(pos + 1)
        if self.at(pos, "}"):
            return members, pos + 1
        while True:
            if not self.at(pos, '"'):
                raise _JsonError(pos, "Expecting property name enclosed in double quotes")
            key, pos = self.value(pos)
            pos = self.skip(pos)
            if not self.at(pos, ":"):
                raise _JsonError(pos, "Expecting ':' delimiter")
            pos = self.skip(pos + 1)
            start = pos
            name = str(key)
            if name.strip().lower() in expand and self.at(pos, "["):
                items, pos = self.array(pos)
                members.append(_Member(name, start, None, items))
            else:
                value, pos = self.value(pos)
                members.append(_Member(name, start, value))
            pos = self.skip(pos)
            if self.at(pos, ","):
                pos = self.skip(pos + 1)
            elif self.at(pos, "}"):
                return members, pos + 1
            else:
                raise _JsonError(pos, "Expecting ',' delimiter or '}'")

    def end(self, pos: int) -> None:
        pos = self.skip(pos)
        if pos != len(self.text):
            raise _JsonError(pos, "Extra data after the end of the JSON value")

    def problem(self, exc: _JsonError) -> RowProblem:
        pos = min(exc.pos, len(self.text))
        line = self.line(pos)
        return RowProblem(
            line, "", f"not valid JSON: {exc.message} (line {line}, column {self.column(pos)})"
        )


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _Number):
        return f"the number {value}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a string"


# --- one row or item -------------------------------------------------------------------------


@dataclass
class _Record:
    """The fields of one CSV row or JSON object, and the problems found in it."""

    line: int
    item: int | None
    problems: list[RowProblem]
    #: The fields the CSV header has (a missing one was reported once, on the header); None
    #: for JSON, where every object must have the required keys itself.
    present: frozenset[str] | None = None
    prefix: str = ""
    simple: dict[str, object] = field(default_factory=dict)
    texts: dict[str, dict[str, object]] = field(default_factory=dict)
    field_lines: dict[str, int] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)
    count: int = 0

    def add(self, name: str, message: str) -> None:
        base = re.split(r"[:.\[]", name, maxsplit=1)[0]
        line = self.field_lines.get(name, self.field_lines.get(base, self.line))
        self.problems.append(RowProblem(line, self.prefix + name, message, self.item))
        self.count += 1

    def required(self, name: str, message: str = "required") -> None:
        if name not in self.bad and (self.present is None or name in self.present):
            self.add(name, message)

    def string(self, name: str, *, numbers: bool = False) -> str:
        """A simple field as stripped text; "" when absent or of the wrong JSON type."""
        value = self.simple.get(name)
        return self.as_text(name, value, numbers=numbers)

    def as_text(self, name: str, value: object, *, numbers: bool = False) -> str:
        if value is None:
            return ""
        if isinstance(value, _Number):
            if numbers:
                return str(value)
            self.add(name, f'must be a JSON string, not {_json_kind(value)}: write "{value}"')
        elif isinstance(value, str):
            return value.strip()
        else:
            self.add(name, f"must be a string, not {_json_kind(value)}")
        self.bad.add(name)
        return ""

    def put_text(self, kind: str, lang: str, value: object) -> None:
        texts = self.texts.setdefault(kind, {})
        if lang in texts:
            self.add(f"{kind}:{lang}", "given twice (language tags are compared ignoring case)")
        else:
            texts[lang] = value

    def put(self, key: _Key, raw: str, value: object) -> None:
        if key.lang is not None:
            self.put_text(key.kind, key.lang, value)
        elif key.kind in self.simple:
            self.add(key.kind, f"given twice (also as {_show(raw)})")
        else:
            self.simple[key.kind] = value

    def texts_of(self, kind: str, *, limit: int, multiline: bool) -> tuple[MultilingualText, bool]:
        """The non-empty texts of kind, valid ones only, and whether any was given at all."""
        out = MultilingualText()
        given = False
        for lang, value in self.texts.get(kind, {}).items():
            label = f"{kind}:{lang}"
            text = self.as_text(label, value)
            if label in self.bad:
                given = True
            if not text:
                continue
            given = True
            error = _text_error(text, limit=limit, multiline=multiline)
            if error:
                self.add(label, error)
            else:
                out.texts.append(LocalizedText(lang=lang, text=text))
        return out, given

    def tags(self, name: str) -> list[str]:
        """A list of BCP 47 tags, as "en;zh-Hans" text or (JSON) a list of strings."""
        value = self.simple.get(name)
        if isinstance(value, list):
            parts: list[str] = []
            for i, entry in enumerate(value):
                if isinstance(entry, str) and not isinstance(entry, _Number):
                    parts.append(entry.strip())
                else:
                    self.add(f"{name}[{i}]", f"must be a string, not {_json_kind(entry)}")
            parts = [p for p in parts if p]
        else:
            parts = _split_list(self.string(name))
        tags: list[str] = []
        for part in parts:
            error = _tag_error(part)
            if error:
                self.add(name, error)
            elif (tag := _canonical_tag(part)) not in tags:
                tags.append(tag)
        return tags


def _fill_from_json(
    record: _Record,
    obj: Mapping[str, object],
    simple: frozenset[str],
    texts: frozenset[str],
) -> None:
    """Sort the keys of a JSON object into record, reporting unknown and duplicated keys."""
    if isinstance(obj, _Object):
        for duplicate in dict.fromkeys(obj.duplicates):
            record.add(duplicate, "this key appears more than once in the object; keep one")
    for raw, value in obj.items():
        key = _parse_key(raw, simple, texts, noun="key")
        if key.error:
            record.add(raw, key.error)
        elif key.kind in texts and key.lang is None:
            if value is None:
                continue
            if not isinstance(value, dict):
                record.add(
                    key.kind,
                    f'must be an object {{language: text}}, e.g. {{"en": "…"}}, '
                    f"or use {key.kind}:<language> keys (got {_json_kind(value)})",
                )
                record.bad.add(key.kind)
                continue
            if isinstance(value, _Object):
                for duplicate in dict.fromkeys(value.duplicates):
                    record.add(f"{key.kind}.{duplicate}", "this language appears more than once")
            for lang, text in value.items():
                error = _tag_error(lang.strip())
                if error:
                    record.add(f"{key.kind}.{lang}", error)
                    record.bad.add(key.kind)
                else:
                    record.put_text(key.kind, _canonical_tag(lang.strip()), text)
        else:
            record.put(key, raw, value)


@dataclass
class _Header:
    """A CSV header: which column holds which field, and the fields present."""

    line: int
    columns: list[tuple[int, _Key, str]]
    present: frozenset[str]
    width: int


def _read_header(
    line: int,
    cells: list[str],
    simple: frozenset[str],
    texts: frozenset[str],
    problems: list[RowProblem],
    *,
    rejected: Mapping[str, str] | None = None,
) -> _Header:
    columns: list[tuple[int, _Key, str]] = []
    labels: dict[str, str] = {}
    for index, raw in enumerate(cells):
        name = raw.strip()
        if not name:
            problems.append(RowProblem(line, "", f"column {index + 1} has no name"))
            continue
        reason = (rejected or {}).get(name.lower())
        key = _Key(error=reason) if reason else _parse_key(name, simple, texts, noun="column")
        if key.kind in texts and key.lang is None and not key.error:
            key = _Key(
                error=f"column {_show(name)} needs a language: {key.kind}:<lang>, e.g. "
                f"{key.kind}:en or {key.kind}:zh-Hans"
            )
        if key.error:
            problems.append(RowProblem(line, name, key.error))
            continue
        if key.label in labels:
            problems.append(
                RowProblem(
                    line,
                    name,
                    f"the column {key.label} is given twice (also as {_show(labels[key.label])})",
                )
            )
            continue
        labels[key.label] = name
        columns.append((index, key, name))
    present = frozenset(k.kind for _, k, _ in columns)
    return _Header(line, columns, present, len(cells))


def _record_from_csv(
    header: _Header, line: int, cells: list[str], problems: list[RowProblem]
) -> _Record:
    record = _Record(line, None, problems, present=header.present)
    extra = [c for c in cells[header.width :] if c.strip()]
    if extra:
        record.add(
            "",
            f"the row has {len(cells)} cells but the header has {header.width} columns "
            f"(first extra value {_show(extra[0])}); quote values that hold the delimiter",
        )
    for index, key, raw in header.columns:
        value = cells[index] if index < len(cells) else ""
        record.put(key, raw, value)
    return record


# --- courses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CourseOptions:
    known_schemes: frozenset[str] | None
    default_scheme: str | None
    known_units: frozenset[str] | None


def _build_course(record: _Record, options: _CourseOptions) -> tuple[Course | None, str]:
    """The Course of one row (None if the row has a problem), and its valid code or ""."""
    course = Course()
    code = record.string("code")
    if not code:
        record.required("code", "required: the institution's own course code")
    elif error := _code_error(code):
        record.add("code", error)
        code = ""
    else:
        course.code = code

    titles, given = record.texts_of("title", limit=MAX_TITLE_LENGTH, multiline=False)
    course.titles.CopyFrom(titles)
    if (
        not given
        and "title" not in record.bad
        and (record.present is None or "title" in record.present)
    ):
        record.add("title", "at least one title is required, e.g. title:en or title:zh-Hans")
    descriptions, _ = record.texts_of("description", limit=MAX_DESCRIPTION_LENGTH, multiline=True)
    if descriptions.texts:
        course.description.CopyFrom(descriptions)

    value = record.string("credits", numbers=True)
    if not value:
        record.required("credits", "required: a decimal number greater than 0, e.g. 3 or 7.5")
    elif error := _credits_error(value):
        record.add("credits", error)
    scheme = record.string("credit_scheme").lower()
    from_default = False
    if not scheme and "credit_scheme" not in record.bad and options.default_scheme:
        scheme, from_default = options.default_scheme, True
    if not scheme:
        record.required("credit_scheme", "required: a credit scheme ID such as cn-credit or ects")
    elif error := _scheme_error(scheme, options.known_schemes):
        record.add("credit_scheme", error + (" (the default scheme)" if from_default else ""))
    else:
        course.credits.CopyFrom(CreditValue(scheme_id=scheme, value=value))

    if level := record.string("level"):
        level_value = _level_value(level)
        if level_value is None:
            record.add(
                "level",
                f"must be bachelor, master, doctoral or short-cycle (got {_show(level)})",
            )
        else:
            course.level = level_value

    course.languages.extend(record.tags("languages"))

    if unit := record.string("unit"):
        if error := _code_error(unit, "a unit code"):
            record.add("unit", error)
        elif options.known_units is not None and _nfc(unit) not in options.known_units:
            record.add("unit", f"no unit of the institution profile has the code {_show(unit)}")
        else:
            course.unit_code = unit

    if isced := record.string("isced_f"):
        if error := _isced_error(isced):
            record.add("isced_f", error)
        else:
            course.isced_f_code = isced

    return (None if record.count else course), code


def _duplicate_problems(
    codes: Iterable[tuple[str, int, int | None]], what: str, name: str = "code"
) -> list[RowProblem]:
    """One problem on each line of a code used more than once (compared after NFC)."""
    seen: dict[str, list[tuple[str, int, int | None]]] = {}
    for code, line, item in codes:
        seen.setdefault(_nfc(code), []).append((code, line, item))
    problems: list[RowProblem] = []
    for places in seen.values():
        if len(places) < 2:
            continue
        lines = ", ".join(str(line) for _, line, _ in places)
        items = ", ".join(str(item) for _, _, item in places if item is not None)
        where = f"items {items} (lines {lines})" if items else f"lines {lines}"
        for code, line, item in places:
            problems.append(
                RowProblem(
                    line,
                    name,
                    f"{what} {_show(code)} is used more than once: on {where} "
                    "(codes are compared after Unicode NFC normalisation)",
                    item,
                )
            )
    return problems


def _finish(
    built: list[tuple[int, int | None, Course | None, str]],
    problems: list[RowProblem],
) -> ParsedCourses:
    problems.extend(
        _duplicate_problems(((code, line, item) for line, item, _, code in built if code), "code")
    )
    if not built and not problems:
        problems.append(RowProblem(1, "", "the file holds no course"))
    problems.sort(key=lambda p: p.line)
    rows = [CourseRow(line, course, item) for line, item, course, _ in built if course is not None]
    return ParsedCourses(rows=[] if problems else rows, problems=problems, row_count=len(built))


def parse_courses(
    text: str | bytes,
    *,
    fmt: Format,
    known_schemes: Collection[str] | None = DEFAULT_SCHEMES,
    default_scheme: str | None = None,
    known_units: Collection[str] | None = None,
) -> ParsedCourses:
    """Validate a course export and build one Course message (without header) per row.

    Args:
        text: the file's text, or its bytes (which must be UTF-8; a BOM is allowed either way).
        fmt: "csv" (header row, then one course per row) or "json" (a list of objects, or
            {"courses": [...]}).
        known_schemes: the credit scheme IDs accepted, e.g. those of the network manifest;
            None accepts any well-formed ID.
        default_scheme: the scheme of rows that name none (e.g. the profile's credit scheme).
        known_units: when given, the unit codes a course may name (e.g. the profile's units).

    Returns:
        every problem of the file, each with its line, and the rows to import — none at all
        when there is any problem. It never raises for bad input.
    """
    options = _CourseOptions(
        frozenset(known_schemes) if known_schemes is not None else None,
        default_scheme.strip().lower() if default_scheme else None,
        frozenset(_nfc(u) for u in known_units) if known_units is not None else None,
    )
    decoded, problem = _decode(text)
    if decoded is None:
        return ParsedCourses([], [problem] if problem else [], 0)
    if fmt == "csv":
        return _courses_from_csv(decoded, options)
    if fmt == "json":
        return _courses_from_json(decoded, options)
    return ParsedCourses([], [RowProblem(1, "", f"unknown format {fmt!r}: csv or json")], 0)


def _courses_from_csv(text: str, options: _CourseOptions) -> ParsedCourses:
    rows, problems = _read_csv(text)
    if not rows:
        if not problems:
            problems.append(RowProblem(1, "", "the file is empty: it needs a header row"))
        return ParsedCourses([], problems, 0)
    (header_line, header_cells), *data = rows
    header = _read_header(header_line, header_cells, _COURSE_SIMPLE, _COURSE_TEXTS, problems)
    for required in ("code", "credits"):
        if required not in header.present:
            problems.append(RowProblem(header_line, required, f"the column {required} is missing"))
    if "title" not in header.present:
        problems.append(
            RowProblem(header_line, "title", "no title column: add title:<lang>, e.g. title:en")
        )
    if "credit_scheme" not in header.present and not options.default_scheme:
        problems.append(
            RowProblem(header_line, "credit_scheme", "the column credit_scheme is missing")
        )
    built: list[tuple[int, int | None, Course | None, str]] = []
    for line, cells in data:
        record = _record_from_csv(header, line, cells, problems)
        course, code = _build_course(record, options)
        built.append((line, None, course, code))
    return _finish(built, problems)


def _courses_from_json(text: str, options: _CourseOptions) -> ParsedCourses:
    scanner = _Scanner(text)
    problems: list[RowProblem] = []
    items: list[tuple[int, object]] = []
    try:
        pos = scanner.skip(0)
        if pos == len(text):
            return ParsedCourses([], [RowProblem(1, "", "the file is empty")], 0)
        if scanner.at(pos, "["):
            items, end = scanner.array(pos)
        elif scanner.at(pos, "{"):
            members, end = scanner.object(pos, frozenset({"courses"}))
            found = False
            for member in members:
                line = scanner.line(member.pos)
                if member.key.strip().lower() != "courses":
                    problems.append(
                        RowProblem(line, member.key, "unknown key: only courses is read here")
                    )
                elif found:
                    problems.append(RowProblem(line, member.key, "given twice"))
                elif member.items is None:
                    kind = _json_kind(member.value)
                    message = f"must be a list of course objects, not {kind}"
                    problems.append(RowProblem(line, member.key, message))
                    found = True
                else:
                    items, found = member.items, True
            if not found:
                problems.append(
                    RowProblem(scanner.line(pos), "courses", "required: the list of courses")
                )
        else:
            value, end = scanner.value(pos)
            problems.append(
                RowProblem(
                    scanner.line(pos),
                    "",
                    f"the file must hold a list of course objects, not {_json_kind(value)}",
                )
            )
        scanner.end(end)
    except _JsonError as exc:
        return ParsedCourses([], [*problems, scanner.problem(exc)], 0)
    built: list[tuple[int, int | None, Course | None, str]] = []
    for index, (pos, value) in enumerate(items, start=1):
        line = scanner.line(pos)
        if not isinstance(value, dict):
            problems.append(
                RowProblem(line, "", f"must be a course object, not {_json_kind(value)}", index)
            )
            built.append((line, index, None, ""))
            continue
        record = _Record(line, index, problems)
        _fill_from_json(record, value, _COURSE_SIMPLE, _COURSE_TEXTS)
        course, code = _build_course(record, options)
        built.append((line, index, course, code))
    return _finish(built, problems)


# --- the institution profile -----------------------------------------------------------------


def _parent_problems(units: Sequence[tuple[str, str]]) -> list[tuple[int, str]]:
    """(unit index, message) for parents that are missing, the unit itself, or in a cycle."""
    keys = [_nfc(code) for code, _ in units]
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    parent_of: dict[int, int] = {}
    out: list[tuple[int, str]] = []
    for i, (_, parent) in enumerate(units):
        if not parent:
            continue
        key = _nfc(parent)
        if key == keys[i]:
            out.append((i, "a unit cannot be its own parent"))
        elif key not in first:
            out.append((i, f"no unit has the code {_show(parent)}"))
        else:
            parent_of[i] = first[key]
    state = [0] * len(units)  # 0 unseen, 1 on the current path, 2 done
    for i in range(len(units)):
        path: list[int] = []
        current: int | None = i
        while current is not None and state[current] == 0:
            state[current] = 1
            path.append(current)
            current = parent_of.get(current)
        if current is not None and state[current] == 1:
            cycle = path[path.index(current) :]
            shown = " → ".join(units[c][0] for c in [*cycle, cycle[0]])
            out.extend((c, f"the parents form a cycle: {shown}") for c in cycle)
        for c in path:
            state[c] = 2
    return sorted(out)


def _build_unit(record: _Record) -> tuple[OrganisationalUnit | None, str, str]:
    """A unit (None if it has a problem), its valid code or "" and its valid parent or ""."""
    unit = OrganisationalUnit()
    code = record.string("code")
    if not code:
        record.required("code")
    elif error := _code_error(code, "a unit code"):
        record.add("code", error)
        code = ""
    else:
        unit.code = code
    names, given = record.texts_of("name", limit=MAX_TITLE_LENGTH, multiline=False)
    unit.names.CopyFrom(names)
    if not given and "name" not in record.bad:
        record.add("name", 'at least one name is required, e.g. "name": {"en": "…"}')
    parent = record.string("parent")
    if parent and (error := _code_error(parent, "a unit code")):
        record.add("parent", error)
        parent = ""
    unit.parent_code = parent
    return (None if record.count else unit), code, parent


@dataclass(frozen=True)
class _ProfileOptions:
    known_schemes: frozenset[str] | None
    known_grade_scales: frozenset[str] | None
    institution_id: str | None


def _build_profile(record: _Record, options: _ProfileOptions) -> InstitutionProfile:
    """The profile fields of record (problems go to record); units are added by the caller."""
    profile = InstitutionProfile()
    institution = record.string("institution_id").lower()
    if not institution:
        record.required("institution_id", "required: the institution's SCHAC domain")
    elif not _INSTITUTION_ID.fullmatch(institution):
        record.add(
            "institution_id",
            f"must be the institution's SCHAC domain, e.g. ynu.edu.cn (got {_show(institution)})",
        )
    elif options.institution_id is not None and institution != options.institution_id:
        record.add(
            "institution_id",
            f"this profile is for {institution}, but it is imported for {options.institution_id}",
        )
    else:
        profile.institution_id = institution
    names, given = record.texts_of("name", limit=MAX_TITLE_LENGTH, multiline=False)
    profile.names.CopyFrom(names)
    if (
        not given
        and "name" not in record.bad
        and (record.present is None or "name" in record.present)
    ):
        record.add("name", "at least one name is required, e.g. name:en or name:zh-Hans")
    country = record.string("country")
    if not country:
        record.required("country", "required: the ISO 3166-1 alpha-2 code, e.g. CN or TH")
    elif not _COUNTRY.fullmatch(country):
        record.add("country", f"must be an ISO 3166-1 alpha-2 code, e.g. CN (got {_show(country)})")
    else:
        profile.country = country.upper()
    if website := record.string("website"):
        if error := _website_error(website):
            record.add("website", error)
        else:
            profile.website = website
    profile.languages_of_instruction.extend(record.tags("languages_of_instruction"))
    if scheme := record.string("credit_scheme").lower():
        if error := _scheme_error(scheme, options.known_schemes):
            record.add("credit_scheme", error)
        else:
            profile.credit_scheme_id = scheme
    if scale := record.string("grade_scale").lower():
        if error := _scheme_error(scale, options.known_grade_scales, "grade scale"):
            record.add("grade_scale", error)
        else:
            profile.grade_scale_id = scale
    return profile


def _add_units(
    profile: InstitutionProfile,
    items: Sequence[tuple[int, object]],
    line_of: Callable[[int], int],
    problems: list[RowProblem],
) -> None:
    built: list[tuple[int, int, str, str]] = []
    for i, (pos, value) in enumerate(items):
        line = line_of(pos)
        record = _Record(line, None, problems, prefix=f"units[{i}].")
        if not isinstance(value, dict):
            problems.append(
                RowProblem(line, f"units[{i}]", f"must be a unit object, not {_json_kind(value)}")
            )
            continue
        _fill_from_json(record, value, _UNIT_SIMPLE, _UNIT_TEXTS)
        unit, code, parent = _build_unit(record)
        if unit is not None:
            profile.units.append(unit)
        if code:
            built.append((i, line, code, parent))
    groups: dict[str, list[tuple[int, int]]] = {}
    for i, line, code, _ in built:
        groups.setdefault(_nfc(code), []).append((i, line))
    for i, line, code, _ in built:
        group = groups[_nfc(code)]
        if len(group) > 1:
            where = ", ".join(f"units[{j}] (line {ln})" for j, ln in group)
            message = (
                f"the unit code {_show(code)} is used more than once: by {where} "
                "(codes are compared after Unicode NFC normalisation)"
            )
            problems.append(RowProblem(line, f"units[{i}].code", message))
    for index, message in _parent_problems([(code, parent) for _, _, code, parent in built]):
        i, line, _, _ = built[index]
        problems.append(RowProblem(line, f"units[{i}].parent", message))


def parse_profile(
    text: str | bytes,
    *,
    fmt: Format,
    known_schemes: Collection[str] | None = DEFAULT_SCHEMES,
    known_grade_scales: Collection[str] | None = None,
    institution_id: str | None = None,
) -> ParsedProfile:
    """Validate an institution profile export and build its InstitutionProfile (without header).

    Args:
        text: the file's text or UTF-8 bytes.
        fmt: "json" (one object; units as a list of {code, name: {lang: text}, parent}) or
            "csv" (a header row and one row; no units).
        known_schemes: the credit scheme IDs accepted; None accepts any well-formed ID.
        known_grade_scales: the grade scale IDs accepted; None accepts any well-formed ID.
        institution_id: when given, the profile must be this institution's.

    Returns:
        the profile, or None and every problem with its line. It never raises for bad input.
    """
    options = _ProfileOptions(
        frozenset(known_schemes) if known_schemes is not None else None,
        frozenset(known_grade_scales) if known_grade_scales is not None else None,
        institution_id,
    )
    decoded, problem = _decode(text)
    if decoded is None:
        return ParsedProfile(None, [problem] if problem else [])
    if fmt == "csv":
        profile, problems = _profile_from_csv(decoded, options)
    elif fmt == "json":
        profile, problems = _profile_from_json(decoded, options)
    else:
        profile, problems = None, [RowProblem(1, "", f"unknown format {fmt!r}: csv or json")]
    problems.sort(key=lambda p: p.line)
    return ParsedProfile(None if problems else profile, problems)


_PROFILE_REQUIRED = ("institution_id", "name", "country")


def _profile_from_csv(
    text: str, options: _ProfileOptions
) -> tuple[InstitutionProfile | None, list[RowProblem]]:
    rows, problems = _read_csv(text)
    if not rows:
        if not problems:
            problems.append(RowProblem(1, "", "the file is empty: it needs a header row"))
        return None, problems
    (header_line, header_cells), *data = rows
    rejected = {"units": "units can be given only in a JSON profile"}
    header = _read_header(
        header_line, header_cells, _PROFILE_SIMPLE, _PROFILE_TEXTS, problems, rejected=rejected
    )
    for required in _PROFILE_REQUIRED:
        if required not in header.present:
            label = "name:<lang>" if required == "name" else required
            problems.append(RowProblem(header_line, required, f"the column {label} is missing"))
    if not data:
        problems.append(RowProblem(header_line, "", "no profile row after the header"))
        return None, problems
    for line, _ in data[1:]:
        problems.append(RowProblem(line, "", "a profile file has one row after the header"))
    line, cells = data[0]
    record = _record_from_csv(header, line, cells, problems)
    return _build_profile(record, options), problems


def _profile_from_json(
    text: str, options: _ProfileOptions
) -> tuple[InstitutionProfile | None, list[RowProblem]]:
    scanner = _Scanner(text)
    problems: list[RowProblem] = []
    try:
        pos = scanner.skip(0)
        if pos == len(text):
            return None, [RowProblem(1, "", "the file is empty")]
        if not scanner.at(pos, "{"):
            value, end = scanner.value(pos)
            scanner.end(end)
            message = f"the file must hold one profile object, not {_json_kind(value)}"
            return None, [RowProblem(scanner.line(pos), "", message)]
        members, end = scanner.object(pos, frozenset({"units"}))
        scanner.end(end)
    except _JsonError as exc:
        return None, [scanner.problem(exc)]
    record = _Record(scanner.line(pos), None, problems)
    obj: dict[str, object] = {}
    units: list[tuple[int, object]] = []
    for member in members:
        key = _parse_key(member.key, _PROFILE_SIMPLE, _PROFILE_TEXTS, noun="key")
        label = key.label or member.key
        line = scanner.line(member.pos)
        if label in record.field_lines:
            problems.append(RowProblem(line, member.key, "this key is given twice; keep one"))
            continue
        record.field_lines[label] = line
        if key.kind == "units" and not key.error:
            if member.items is not None:
                units = member.items
            elif member.value is not None:
                kind = _json_kind(member.value)
                record.add("units", f"must be a list of unit objects, not {kind}")
            continue
        obj[member.key] = member.value
    _fill_from_json(record, obj, _PROFILE_SIMPLE, _PROFILE_TEXTS)
    profile = _build_profile(record, options)
    _add_units(profile, units, scanner.line, problems)
    return profile, problems


# --- checking built messages -----------------------------------------------------------------


def _texts_problems(
    texts: MultilingualText, path: str, *, limit: int, multiline: bool, required: bool
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for i, entry in enumerate(texts.texts):
        where = f"{path}.texts[{i}]"
        if error := _tag_error(entry.lang):
            problems.append(FieldProblem(f"{where}.lang", error))
        elif entry.lang.lower() in seen:
            problems.append(FieldProblem(f"{where}.lang", "one entry per language"))
        seen.add(entry.lang.lower())
        if not entry.text.strip():
            problems.append(FieldProblem(f"{where}.text", "must not be empty"))
        elif error := _text_error(entry.text, limit=limit, multiline=multiline):
            problems.append(FieldProblem(f"{where}.text", error))
    if required and not texts.texts:
        problems.append(FieldProblem(path, "at least one text is required"))
    return problems


def _header_problems(
    header: RecordHeader, expected_name: Callable[[str], str]
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not _NETWORK_ID.fullmatch(header.network_id):
        problems.append(FieldProblem("header.network_id", "not a network ID"))
    if header.version < 1:
        problems.append(FieldProblem("header.version", "must be 1 or more"))
    if not _INSTITUTION_ID.fullmatch(header.issuer):
        problems.append(FieldProblem("header.issuer", "must be a lower-case SCHAC domain"))
    else:
        try:
            name = expected_name(header.issuer)
        except ProtocolError:
            name = None
        if header.name != name:
            problems.append(FieldProblem("header.name", f"must be {name!r}"))
    if not header.HasField("issued_at"):
        problems.append(FieldProblem("header.issued_at", "required"))
    if header.parties:
        problems.append(FieldProblem("header.parties", "catalogue records are public: no parties"))
    return problems


def _course_problems(course: Course, known_schemes: Collection[str] | None) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if error := _code_error(course.code):
        problems.append(FieldProblem("code", error))
    problems += _texts_problems(
        course.titles, "titles", limit=MAX_TITLE_LENGTH, multiline=False, required=True
    )
    problems += _texts_problems(
        course.description,
        "description",
        limit=MAX_DESCRIPTION_LENGTH,
        multiline=True,
        required=False,
    )
    if not course.HasField("credits"):
        problems.append(FieldProblem("credits", "required"))
    else:
        if error := _credits_error(course.credits.value):
            problems.append(FieldProblem("credits.value", error))
        if error := _scheme_error(course.credits.scheme_id, known_schemes):
            problems.append(FieldProblem("credits.scheme_id", error))
    if course.level not in CourseLevel.values():
        problems.append(FieldProblem("level", "not a CourseLevel"))
    for i, tag in enumerate(course.languages):
        if error := _tag_error(tag):
            problems.append(FieldProblem(f"languages[{i}]", error))
    if course.unit_code and (error := _code_error(course.unit_code, "a unit code")):
        problems.append(FieldProblem("unit_code", error))
    if course.isced_f_code and (error := _isced_error(course.isced_f_code)):
        problems.append(FieldProblem("isced_f_code", error))
    if course.HasField("header"):
        problems += _header_problems(
            course.header, lambda issuer: course_record_name(issuer, course.code)
        )
    return problems


def validate_course(course: Course, *, known_schemes: Collection[str] | None = None) -> None:
    """Check a Course against the catalogue rules (and its header, when it has one).

    For a course built by hand, or received from another member.

    Raises:
        ProtocolError: MALFORMED, with one field problem per broken rule.
    """
    problems = _course_problems(course, known_schemes)
    if problems:
        raise ProtocolError(
            Reason.MALFORMED, "course breaks the catalogue rules", field_problems=problems
        )


def _profile_problems(
    profile: InstitutionProfile, known_schemes: Collection[str] | None
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not _INSTITUTION_ID.fullmatch(profile.institution_id):
        problems.append(FieldProblem("institution_id", "must be a lower-case SCHAC domain"))
    problems += _texts_problems(
        profile.names, "names", limit=MAX_TITLE_LENGTH, multiline=False, required=True
    )
    if not re.fullmatch(r"[A-Z]{2}", profile.country):
        problems.append(FieldProblem("country", "must be an ISO 3166-1 alpha-2 code"))
    if profile.website and (error := _website_error(profile.website)):
        problems.append(FieldProblem("website", error))
    for i, tag in enumerate(profile.languages_of_instruction):
        if error := _tag_error(tag):
            problems.append(FieldProblem(f"languages_of_instruction[{i}]", error))
    if profile.credit_scheme_id and (
        error := _scheme_error(profile.credit_scheme_id, known_schemes)
    ):
        problems.append(FieldProblem("credit_scheme_id", error))
    if profile.grade_scale_id and (
        error := _scheme_error(profile.grade_scale_id, None, "grade scale")
    ):
        problems.append(FieldProblem("grade_scale_id", error))
    seen: dict[str, int] = {}
    for i, unit in enumerate(profile.units):
        if error := _code_error(unit.code, "a unit code"):
            problems.append(FieldProblem(f"units[{i}].code", error))
        elif (key := _nfc(unit.code)) in seen:
            problems.append(FieldProblem(f"units[{i}].code", f"same as units[{seen[key]}]"))
        else:
            seen[key] = i
        problems += _texts_problems(
            unit.names, f"units[{i}].names", limit=MAX_TITLE_LENGTH, multiline=False, required=True
        )
    units = [(u.code, u.parent_code) for u in profile.units]
    for i, message in _parent_problems(units):
        problems.append(FieldProblem(f"units[{i}].parent_code", message))
    if profile.HasField("header"):
        problems += _header_problems(profile.header, profile_record_name)
        if profile.header.issuer != profile.institution_id:
            problems.append(FieldProblem("header.issuer", "must be the profile's institution"))
    return problems


def validate_profile(
    profile: InstitutionProfile, *, known_schemes: Collection[str] | None = None
) -> None:
    """Check an InstitutionProfile against the catalogue rules (and its header, when it has one).

    Raises:
        ProtocolError: MALFORMED, with one field problem per broken rule.
    """
    problems = _profile_problems(profile, known_schemes)
    if problems:
        raise ProtocolError(
            Reason.MALFORMED, "profile breaks the catalogue rules", field_problems=problems
        )


# --- record names and signing ----------------------------------------------------------------


def _check_institution(institution_id: str) -> None:
    if not _INSTITUTION_ID.fullmatch(institution_id):
        raise ProtocolError(
            Reason.MALFORMED,
            "institution ID must be a lower-case SCHAC domain",
            field_problems=[FieldProblem("institution_id", "must be a lower-case SCHAC domain")],
        )


def _percent_encode(text: str) -> str:
    return "".join(
        chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in text.encode("utf-8")
    )


def profile_record_name(institution_id: str) -> str:
    """The record name of an institution's profile: ``institutions/{id}/profile``."""
    _check_institution(institution_id)
    return f"institutions/{institution_id}/profile"


def COURSES_PARENT(institution_id: str) -> str:  # noqa: N802 - named as the brief asks
    """The collection of an institution's courses: ``institutions/{id}/courses``."""
    _check_institution(institution_id)
    return f"institutions/{institution_id}/courses"


def course_record_name(institution_id: str, code: str) -> str:
    """The record name of a course: ``institutions/{id}/courses/{code}``.

    The code is taken in Unicode NFC and percent-encoded as UTF-8 except for the RFC 3986
    unreserved characters (A-Z a-z 0-9 - . _ ~), so "/" becomes %2F and a space %20 and the
    name's last segment is a safe path segment; "CS101" stays "CS101".

    Raises:
        ProtocolError: MALFORMED if the institution ID or the code breaks the rules.
    """
    if error := _code_error(code):
        raise ProtocolError(
            Reason.MALFORMED, "not a course code", field_problems=[FieldProblem("code", error)]
        )
    return f"{COURSES_PARENT(institution_id)}/{_percent_encode(_nfc(code))}"


def _new_header(
    *,
    network_id: str,
    name: Callable[[], str],
    institution_id: str,
    version: int,
    issued_at: datetime,
) -> RecordHeader:
    problems: list[FieldProblem] = []
    if not _NETWORK_ID.fullmatch(network_id):
        problems.append(FieldProblem("header.network_id", "not a network ID"))
    if not _INSTITUTION_ID.fullmatch(institution_id):
        problems.append(FieldProblem("header.issuer", "must be a lower-case SCHAC domain"))
    if version < 1:
        problems.append(FieldProblem("header.version", "must be 1 or more"))
    if issued_at.tzinfo is None:
        problems.append(FieldProblem("header.issued_at", "must be an aware (UTC) time"))
    if problems:
        raise ProtocolError(Reason.MALFORMED, "bad record header", field_problems=problems)
    return RecordHeader(
        network_id=network_id,
        name=name(),
        version=version,
        issuer=institution_id,
        issued_at=to_timestamp(issued_at),
    )


def sign_course(
    course: Course,
    *,
    network_id: str,
    institution_id: str,
    version: int,
    issued_at: datetime,
    signer: Signer,
) -> Envelope:
    """Fill the course's RecordHeader, serialise it once and sign those bytes (type COURSE).

    The header names the network, the record (course_record_name), the version, the issuer
    (institution_id) and the issue time; no parties, so every member may read it. Any header
    the course already had is replaced; the course passed in is not changed.

    Raises:
        ProtocolError: MALFORMED if the course or the header breaks the rules.
    """
    record = Course()
    record.CopyFrom(course)
    record.ClearField("header")
    validate_course(record)
    record.header.CopyFrom(
        _new_header(
            network_id=network_id,
            name=lambda: course_record_name(institution_id, record.code),
            institution_id=institution_id,
            version=version,
            issued_at=issued_at,
        )
    )
    return sign_envelope(record.SerializeToString(deterministic=True), types.COURSE, [signer])


def sign_profile(
    profile: InstitutionProfile,
    *,
    network_id: str,
    institution_id: str,
    version: int,
    issued_at: datetime,
    signer: Signer,
) -> Envelope:
    """Fill the profile's RecordHeader, serialise it once and sign it (INSTITUTION_PROFILE).

    An empty profile.institution_id is set to institution_id; a different one is refused.

    Raises:
        ProtocolError: MALFORMED if the profile or the header breaks the rules.
    """
    record = InstitutionProfile()
    record.CopyFrom(profile)
    record.ClearField("header")
    if not record.institution_id:
        record.institution_id = institution_id
    elif record.institution_id != institution_id:
        raise ProtocolError(
            Reason.MALFORMED,
            "the profile is another institution's",
            field_problems=[FieldProblem("institution_id", f"must be {institution_id}")],
        )
    validate_profile(record)
    record.header.CopyFrom(
        _new_header(
            network_id=network_id,
            name=lambda: profile_record_name(institution_id),
            institution_id=institution_id,
            version=version,
            issued_at=issued_at,
        )
    )
    payload = record.SerializeToString(deterministic=True)
    return sign_envelope(payload, types.INSTITUTION_PROFILE, [signer])


# --- batches and idempotent re-runs ----------------------------------------------------------


def file_digest(data: str | bytes) -> bytes:
    """SHA-256 of an import file's bytes (text is taken as UTF-8): what batch IDs depend on."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).digest()


def course_content_digest(course: Course) -> bytes:
    """SHA-256 of a course's content without its header, to skip re-issuing an unchanged course.

    Deterministic serialisation is stable for one protobuf runtime, which is all a node needs
    to compare what it imports with what it issued; it is not a cross-language canonical form.
    """
    content = Course()
    content.CopyFrom(course)
    content.ClearField("header")
    return hashlib.sha256(content.SerializeToString(deterministic=True)).digest()


def batches(rows: Sequence[CourseRow], size: int = DEFAULT_BATCH_SIZE) -> list[list[CourseRow]]:
    """rows cut, in file order, into consecutive batches of size rows (the last may be shorter)."""
    if size < 1:
        raise ValueError("batch size must be 1 or more")
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]


def batch_id(
    institution_id: str, file_digest: bytes, index: int, *, size: int = DEFAULT_BATCH_SIZE
) -> str:
    """A stable ID of batch index (0-based) of a file, for importing it idempotently.

    The same institution, file bytes, index and batch size give the same ID, so a node that
    stores each batch's ID in the transaction that imports it recognises, on a re-run after a
    crash, the batches already done. The size is part of the ID because with another size the
    same index holds other rows.
    """
    if index < 0 or size < 1:
        raise ValueError("index must be 0 or more and size 1 or more")
    digest = hashlib.sha256()
    for part in (
        b"sseaun.catalogue-import-batch.v1",
        institution_id.encode("utf-8"),
        file_digest,
        str(size).encode(),
        str(index).encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return "batch-" + digest.hexdigest()[:32]


def guess_format(filename: str) -> Format | None:
    """ "csv" or "json" from a file name's extension, or None."""
    lowered = filename.lower()
    if lowered.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if lowered.endswith(".json"):
        return "json"
    return None
