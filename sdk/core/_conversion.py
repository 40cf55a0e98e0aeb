"""Credit and grade conversion (DESIGN §7): pure functions over the scheme and scale tables.

Credits convert by share of a full-time year (the ECTS relative method), with hours per credit as
a cross-check; an agreement's override (a fixed ratio or a table) takes precedence. Grades convert
by grading tables (the ECTS grading table / EGRACONS method: percentile bands of passing grades),
falling back to a linear mapping between the pass mark and the best grade. A fail always stays a
fail and a pass a pass.

Every result is a *suggestion* that records its method and inputs; the home institution confirms
or changes it in its recognition decision. All arithmetic is decimal.Decimal, never float. The
rules are written down for users in docs/conversion.md.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import (
    ROUND_HALF_DOWN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Literal

from sseaun.v1.types_pb2 import CreditValue, Grade

from ._errors import FieldProblem, ProtocolError, Reason
from ._schemes import (
    CONTACT,
    CREDIT_SCHEMES,
    GRADE_SCALES,
    HIGHER_IS_BETTER,
    REFERENCES,
    WORKLOAD,
    CreditSchemeSpec,
    GradeScaleSpec,
    GradeSymbolSpec,
    SymbolKind,
    _unknown,
    credit_scheme,
    decimal_or_none,
    grade_scale,
    plain,
)

__all__ = [
    "CREDIT_SCHEMES",
    "DEFAULT_TOLERANCE",
    "GRADE_SCALES",
    "REFERENCES",
    "SUGGESTION",
    "ConversionOverride",
    "CreditConversion",
    "CreditMethod",
    "CreditSchemeSpec",
    "GradeConversion",
    "GradeDistribution",
    "GradeMethod",
    "GradeOverride",
    "GradeScaleSpec",
    "GradeSymbolSpec",
    "GradeTable",
    "SymbolKind",
    "convert_credits",
    "convert_grade",
    "credit_scheme",
    "grade_position",
    "grade_scale",
    "parse_decimal",
]

#: The credit cross-check warns when the hours figure and the year-fraction figure differ by more
#: than this share of the larger of the two (20 %).
DEFAULT_TOLERANCE = Decimal("0.20")

#: What every conversion result is.
SUGGESTION = "a suggestion, to be confirmed by the home institution in its recognition decision"

# 40 significant digits: exact for every sum, product and quotient of the inputs (at most 32
# characters each) that is exact at all; a recurring quotient is cut far below any rounding step.
_CONTEXT = Context(prec=40, traps=[InvalidOperation, DivisionByZero, Overflow])
_HUNDRED = Decimal(100)
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2212", "-"))
_DECIMAL_RULE = "must be a decimal string: digits, optionally '.' and more digits (e.g. '7.5')"


def parse_decimal(text: str, field_name: str = "value") -> Decimal:
    """The Decimal of a wire decimal string (ADR 0005): digits, optionally "." and digits.

    No sign, exponent or spaces; at most 32 characters. "7.50" and "7.5" are the same number.

    Raises:
        ProtocolError: MALFORMED, with a field problem naming field_name.
    """
    value = decimal_or_none(text)
    if value is None:
        raise ProtocolError(
            Reason.MALFORMED,
            "not a decimal string",
            field_problems=[FieldProblem(field_name, _DECIMAL_RULE)],
        )
    return value


def _malformed(message: str, problems: Sequence[FieldProblem]) -> ProtocolError:
    return ProtocolError(Reason.MALFORMED, message, field_problems=problems)


def _is_number(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def _round(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """value rounded to a multiple of step (exact: the quotient is an integer)."""
    return (value / step).to_integral_value(rounding=rounding) * step


def _shown(value: Decimal, places: int = 4) -> str:
    """A figure for the record: exact if short, else rounded to places fraction digits."""
    text = plain(value)
    if len(text.partition(".")[2]) <= places:
        return text
    return plain(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)) + "…"


# --- credits ---------------------------------------------------------------------------------


class CreditMethod(enum.StrEnum):
    """How a credit conversion was computed."""

    #: Same scheme: the value as given.
    IDENTITY = "identity"
    #: By share of a full-time year: value × target credits per year / source credits per year.
    YEAR_FRACTION = "year-fraction"
    #: By hours per credit (only when a yearly total is missing and both count workload).
    HOURS = "hours"
    #: An agreement's table gave the value for exactly this amount.
    OVERRIDE_TABLE = "override-table"
    #: An agreement's fixed ratio.
    OVERRIDE_RATIO = "override-ratio"


@dataclass(frozen=True)
class ConversionOverride:
    """An agreement's (or an institution's) own credit conversion, which takes precedence.

    Attributes:
        from_scheme, to_scheme: the direction it applies to (one direction only).
        ratio: target credits per source credit, e.g. Decimal("1.7") for ITS's 1.7 ECTS per sks.
        table: exact source amounts and the target amounts agreed for them, e.g. {3: 6, 4: 7.5};
            a table entry wins over the ratio and is used as given, unrounded.
        step: rounding step of ratio results; the target scheme's when None.
        source: what the rule is, for the record: e.g. "IIA ynu.edu.cn–chula.ac.th v3, §4".

    A table without an entry for the amount and without a ratio leaves the default method in
    charge (the result says so).

    Raises:
        ProtocolError: MALFORMED when a figure is not a finite Decimal of the right sign.
    """

    from_scheme: str
    to_scheme: str
    ratio: Decimal | None = None
    table: Mapping[Decimal, Decimal] = field(default_factory=dict)
    step: Decimal | None = None
    source: str = ""

    def __post_init__(self) -> None:
        problems: list[FieldProblem] = []
        if self.ratio is None and not self.table:
            problems.append(FieldProblem("override", "give a ratio, a table or both"))
        if self.ratio is not None and not (_is_number(self.ratio) and self.ratio > 0):
            problems.append(FieldProblem("override.ratio", "must be a positive Decimal"))
        for amount, agreed in self.table.items():
            if not (_is_number(amount) and _is_number(agreed) and amount >= 0 and agreed >= 0):
                problems.append(
                    FieldProblem(f"override.table[{amount}]", "keys and values: Decimals >= 0")
                )
        if self.step is not None and not (_is_number(self.step) and self.step > 0):
            problems.append(FieldProblem("override.step", "must be a positive Decimal"))
        if problems:
            raise _malformed("bad conversion override", problems)


@dataclass(frozen=True)
class CreditConversion:
    """A suggested credit conversion, with its method, its inputs and the cross-check.

    Attributes:
        from_scheme, from_value: what was converted.
        to_scheme: the target scheme.
        value: the suggested amount, rounded to step (exact for identity and table results).
        exact: the method's figure before rounding.
        step: the rounding step applied (None when nothing was rounded); halves round up.
        method: how value was computed.
        year_fraction: the figure by share of a full-time year, unrounded (None if a yearly
            total is missing).
        hours: the figure by hours per credit (middle of each range), unrounded; None when the
            hours basis is not valid (a scheme counts contact hours, or publishes no hours).
        hours_range: the hours figure from the ends of both hours ranges (lowest, highest).
        relative_difference: |hours − year_fraction| / the larger of the two, per credit (the
            same in both directions of a pair of schemes).
        tolerance: the largest relative difference accepted without a warning.
        warning: True when relative_difference exceeds tolerance: the two methods disagree and
            an agreement override deserves a look.
        inputs: every figure the conversion used, as decimal strings, by name.
        notes: English sentences on what was not possible or what was chosen.
        suggestion: always True: the result is a suggestion (see SUGGESTION).
    """

    from_scheme: str
    from_value: Decimal
    to_scheme: str
    value: Decimal
    exact: Decimal
    step: Decimal | None
    method: CreditMethod
    year_fraction: Decimal | None
    hours: Decimal | None
    hours_range: tuple[Decimal, Decimal] | None
    relative_difference: Decimal | None
    tolerance: Decimal
    warning: bool
    inputs: Mapping[str, str]
    notes: tuple[str, ...]
    suggestion: Literal[True] = field(default=True, init=False)

    def to_credit_value(self) -> CreditValue:
        """The suggested amount as a wire CreditValue."""
        return CreditValue(scheme_id=self.to_scheme, value=plain(self.value))

    @property
    def summary(self) -> str:
        """One English sentence: the suggestion, its method and the cross-check."""
        text = (
            f"Suggested {plain(self.value)} {self.to_scheme} for {plain(self.from_value)} "
            f"{self.from_scheme} by {self.method.value}"
        )
        if self.relative_difference is not None:
            text += f"; the hours basis differs by {_percent(self.relative_difference)}" + (
                f" (more than {_percent(self.tolerance)})" if self.warning else ""
            )
        return text + f": {SUGGESTION}."


def _percent(share: Decimal) -> str:
    return plain((share * _HUNDRED).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) + " %"


def convert_credits(
    value: CreditValue,
    to_scheme: str,
    *,
    override: ConversionOverride | None = None,
    schemes: Mapping[str, CreditSchemeSpec] | None = None,
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> CreditConversion:
    """Suggest how many to_scheme credits value is worth.

    Method, in order: the override (a table entry for exactly this amount, else its ratio);
    the same scheme (the value as given); the share of a full-time year, value × target per year
    / source per year, rounded to the target scheme's step (halves up); the hours per credit,
    only when a yearly total is missing and both schemes count workload. The hours figure is
    always computed as a cross-check when both schemes count workload hours.

    Args:
        value: the amount and its scheme.
        to_scheme: the target scheme ID.
        override: an agreement's rule for from_scheme → to_scheme.
        schemes: the schemes to use, by ID (e.g. those of a network manifest, through
            CreditSchemeSpec.from_proto); the built-in CREDIT_SCHEMES when None.
        tolerance: the cross-check's tolerance (a share, e.g. Decimal("0.2")).

    Raises:
        ProtocolError: MALFORMED for an unknown scheme, a value that is not a decimal string, an
            override for another pair of schemes, or schemes without the figures any method needs
            (e.g. AUN-ACTS, which is no credit unit, or Nepal without an override).
    """
    known = CREDIT_SCHEMES if schemes is None else schemes
    problems: list[FieldProblem] = []
    source = known.get(value.scheme_id)
    target = known.get(to_scheme)
    amount = decimal_or_none(value.value)
    if source is None:
        problems.append(
            FieldProblem("value.scheme_id", _unknown("credit scheme", value.scheme_id, known))
        )
    if target is None:
        problems.append(FieldProblem("to_scheme", _unknown("credit scheme", to_scheme, known)))
    if amount is None:
        problems.append(FieldProblem("value.value", _DECIMAL_RULE))
    if override is not None and (override.from_scheme, override.to_scheme) != (
        value.scheme_id,
        to_scheme,
    ):
        problems.append(
            FieldProblem(
                "override",
                f"is for {override.from_scheme} → {override.to_scheme}, "
                f"not {value.scheme_id} → {to_scheme}",
            )
        )
    if not (_is_number(tolerance) and tolerance >= 0):
        problems.append(FieldProblem("tolerance", "must be a Decimal >= 0"))
    if problems or source is None or target is None or amount is None:
        raise _malformed("cannot convert these credits", problems)
    with localcontext(_CONTEXT):
        return _convert_credits(amount, source, target, override, tolerance)


def _basis_name(scheme: CreditSchemeSpec) -> str:
    if scheme.basis == CONTACT:
        return "counts contact hours"
    if scheme.basis == WORKLOAD:
        return "publishes no hours per credit"
    return "states no hour basis"


def _convert_credits(
    amount: Decimal,
    source: CreditSchemeSpec,
    target: CreditSchemeSpec,
    override: ConversionOverride | None,
    tolerance: Decimal,
) -> CreditConversion:
    inputs: dict[str, str] = {
        "from.scheme": source.id,
        "from.value": plain(amount),
        "to.scheme": target.id,
    }
    notes: list[str] = []

    # Multiply first, divide last: a result that is exact at all stays exact (3 × 60 / 36 = 5).
    src_year, tgt_year = source.credits_per_year, target.credits_per_year
    by_year: Decimal | None = None
    if src_year is not None and tgt_year is not None:
        by_year = amount * tgt_year / src_year
        inputs["from.credits_per_year"] = plain(src_year)
        inputs["to.credits_per_year"] = plain(tgt_year)
    else:
        notes.extend(
            f"{s.id} has no yearly total: {s.note}"
            for s in (source, target)
            if s.credits_per_year is None
        )

    src_hours, tgt_hours = source.hours_per_credit, target.hours_per_credit
    by_hours: Decimal | None = None
    hours_range: tuple[Decimal, Decimal] | None = None
    difference: Decimal | None = None
    if source.id == target.id:
        pass
    elif source.basis == WORKLOAD == target.basis and src_hours and tgt_hours:
        src_mid, tgt_mid = (src_hours[0] + src_hours[1]) / 2, (tgt_hours[0] + tgt_hours[1]) / 2
        by_hours = amount * src_mid / tgt_mid
        hours_range = (amount * src_hours[0] / tgt_hours[1], amount * src_hours[1] / tgt_hours[0])
        inputs["from.hours_per_credit"] = f"{plain(src_hours[0])}–{plain(src_hours[1])}"
        inputs["to.hours_per_credit"] = f"{plain(tgt_hours[0])}–{plain(tgt_hours[1])}"
        if src_year is not None and tgt_year is not None:
            # |hours ratio − year ratio| / the larger of the two, from cross-products (exact)
            # and one division, so A → B and B → A give the same figure to the last digit.
            hours_side, year_side = src_mid * src_year, tgt_year * tgt_mid
            difference = abs(hours_side - year_side) / max(hours_side, year_side)
            inputs["relative_difference"] = _shown(difference)
    else:
        invalid = [s for s in (source, target) if s.basis != WORKLOAD or s.hours_per_credit is None]
        notes.append(
            "no hours cross-check: "
            + " and ".join(f"{s.id} {_basis_name(s)}" for s in invalid)
            + " (hours compare only workload with workload)"
        )

    method: CreditMethod | None = None
    exact = amount
    step: Decimal | None = None
    if override is not None:
        inputs["override.source"] = override.source or "(not named)"
        agreed = override.table.get(amount)
        if agreed is not None:
            method, exact = CreditMethod.OVERRIDE_TABLE, agreed
            inputs["override.table_entry"] = f"{plain(amount)} → {plain(agreed)}"
        elif override.ratio is not None:
            method, exact = CreditMethod.OVERRIDE_RATIO, amount * override.ratio
            step = override.step or target.step
            inputs["override.ratio"] = plain(override.ratio)
        else:
            notes.append(
                f"the override table has no entry for {plain(amount)}: the default method is used"
            )
    if method is None:
        if source.id == target.id:
            method = CreditMethod.IDENTITY
        elif by_year is not None:
            method, exact, step = CreditMethod.YEAR_FRACTION, by_year, target.step
        elif by_hours is not None:
            method, exact, step = CreditMethod.HOURS, by_hours, target.step
            notes.append("converted by hours per credit, as a yearly total is missing")
        else:
            raise _malformed(
                "no conversion method applies",
                [
                    FieldProblem(
                        "to_scheme" if scheme is target else "value.scheme_id",
                        f"{scheme.id} has neither a yearly total nor workload hours "
                        f"({scheme.note}); convert with an agreement override",
                    )
                    for scheme in (source, target)
                    if scheme.credits_per_year is None
                ],
            )
    rounded = exact if step is None else _round(exact, step, ROUND_HALF_UP)
    if step is not None:
        inputs["rounding"] = f"to a multiple of {plain(step)}, halves up"
    return CreditConversion(
        from_scheme=source.id,
        from_value=amount,
        to_scheme=target.id,
        value=rounded,
        exact=exact,
        step=step,
        method=method,
        year_fraction=by_year,
        hours=by_hours,
        hours_range=hours_range,
        relative_difference=difference,
        tolerance=tolerance,
        warning=difference is not None and difference > tolerance,
        inputs=inputs,
        notes=tuple(notes),
    )


# --- grades: placing a grade on its scale ----------------------------------------------------


class GradeMethod(enum.StrEnum):
    """How a grade conversion was made."""

    #: Same scale: the grade as given.
    IDENTITY = "identity"
    #: An agreement's mapping for this symbol.
    OVERRIDE = "override"
    #: By grading tables: the target grade whose percentile band overlaps the source grade's
    #: band most (ECTS grading table / EGRACONS).
    DISTRIBUTION = "distribution"
    #: By linear position between the pass mark (0) and the best grade (1), direction-aware.
    SCALE_MAPPING = "scale-mapping"
    #: A fail converts to the target scale's fail symbol.
    FAIL = "fail"
    #: An ungraded pass converts to the target's ungraded pass (or to a pass without a grade).
    UNGRADED = "ungraded"
    #: Withdrawn, incomplete, dropped: nothing to convert.
    NO_RESULT = "no-result"


@dataclass(frozen=True)
class _Placed:
    """A grade located on its scale."""

    scale: GradeScaleSpec
    symbol: str
    spec: GradeSymbolSpec | None  # None: a number on a continuous scale
    kind: SymbolKind
    value: Decimal | None  # on the scale's axis
    position: Decimal | None  # 1 best, 0 pass mark, < 0 fail; None ungraded / no result
    order: int  # index among the scale's symbols; -1 for a number


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_DASHES).strip()


def _format(value: Decimal, min_decimals: int) -> str:
    text = plain(value)
    if len(text.partition(".")[2]) < min_decimals:
        text = f"{value:.{min_decimals}f}"
    return text


def _in_band(scale: GradeScaleSpec, band: tuple[Decimal, Decimal], value: Decimal) -> bool:
    low, high = band
    return low <= value < high or value == high == scale.maximum


def _position(
    scale: GradeScaleSpec, kind: SymbolKind, value: Decimal | None, order: int
) -> Decimal | None:
    if kind in (SymbolKind.UNGRADED, SymbolKind.NO_RESULT):
        return None
    if scale.ordinal:
        if kind is SymbolKind.FAIL:
            return Decimal(-1)
        graded = [i for i, s in enumerate(scale.symbols) if s.kind is SymbolKind.GRADED]
        if len(graded) == 1:
            return Decimal(1)
        return Decimal(len(graded) - 1 - graded.index(order)) / (len(graded) - 1)
    best, worst, passing = scale.best, scale.worst, scale.pass_mark
    assert best is not None and worst is not None and passing is not None  # a numeric scale
    if kind is SymbolKind.FAIL:
        if value is None or passing == worst:
            return Decimal(-1)
        return max(Decimal(-1), (value - passing) / (passing - worst))
    assert value is not None  # graded symbols of a numeric scale have one (GradeScaleSpec)
    if best == passing:
        return Decimal(1)
    return (value - passing) / (best - passing)


def _place(scale: GradeScaleSpec, symbol: str, numeric: str, path: str) -> _Placed:
    """Locate a grade on its scale, or raise MALFORMED naming path.symbol / path.numeric."""
    text = _normalize(symbol)
    given: Decimal | None = None
    if numeric:
        given = decimal_or_none(numeric)
        if given is None:
            raise _malformed("not a grade", [FieldProblem(f"{path}.numeric", _DECIMAL_RULE)])
    spec = scale.symbol(text)
    number: Decimal | None = None
    if spec is None and scale.continuous:
        number = decimal_or_none(text)
        if number is not None:
            assert scale.minimum is not None and scale.maximum is not None
            if not scale.minimum <= number <= scale.maximum:
                raise _malformed(
                    "not a grade",
                    [
                        FieldProblem(
                            f"{path}.symbol",
                            f"{text} lies outside {plain(scale.minimum)}–"
                            f"{plain(scale.maximum)} on {scale.id}",
                        )
                    ],
                )
            for candidate in scale.symbols:  # "4" is the symbol "4.0"
                if candidate.numeric == number and decimal_or_none(candidate.symbol) is not None:
                    spec, number = candidate, None
                    break
    if spec is None and number is None:
        listed = ", ".join(s.symbol for s in scale.symbols)
        if scale.continuous and scale.minimum is not None and scale.maximum is not None:
            listed += f", or a number from {plain(scale.minimum)} to {plain(scale.maximum)}"
        raise _malformed(
            "not a grade",
            [FieldProblem(f"{path}.symbol", f"{text!r} is not on {scale.id}; use {listed}")],
        )
    if spec is None:
        assert number is not None
        if given is not None and given != number:
            raise _malformed(
                "not a grade", [FieldProblem(f"{path}.numeric", f"must equal the symbol {text}")]
            )
        kind = SymbolKind.GRADED if scale.at_or_better(number) else SymbolKind.FAIL
        return _Placed(scale, text, None, kind, number, _position(scale, kind, number, -1), -1)
    value = spec.value
    if given is not None:
        if spec.numeric is not None and given != spec.numeric:
            raise _malformed(
                "not a grade",
                [FieldProblem(f"{path}.numeric", f"{spec.symbol} is {plain(spec.numeric)}")],
            )
        if spec.band is not None:
            if not _in_band(scale, spec.band, given):
                raise _malformed(
                    "not a grade",
                    [FieldProblem(f"{path}.numeric", f"outside the band of {spec.symbol}")],
                )
            value = given  # a mark inside the band places the grade more precisely
    order = scale.symbols.index(spec)
    return _Placed(
        scale, spec.symbol, spec, spec.kind, value, _position(scale, spec.kind, value, order), order
    )


def grade_position(
    grade: Grade, *, scales: Mapping[str, GradeScaleSpec] | None = None
) -> Decimal | None:
    """Where a grade sits on its scale, whatever the scale's direction.

    1 is the best grade and 0 the lowest pass, linear in the scale's values between them (an
    ordinal scale such as ECTS A–E spaces its grades evenly); a fail is below 0 (down to -1, the
    worst value; -1 for a fail without a value); None for an ungraded pass or no result. Two
    grades compare as their positions do: the conversion functions never turn a higher position
    into a lower one.

    Raises:
        ProtocolError: MALFORMED for an unknown scale or a grade not on it.
    """
    known = GRADE_SCALES if scales is None else scales
    scale = known.get(grade.scale_id)
    if scale is None:
        raise _malformed(
            "unknown grade scale",
            [FieldProblem("grade.scale_id", _unknown("grade scale", grade.scale_id, known))],
        )
    with localcontext(_CONTEXT):
        return _place(scale, grade.symbol, grade.numeric, "grade").position


# --- grades: grading tables ------------------------------------------------------------------


@dataclass(frozen=True)
class GradeTable:
    """An institution's grading table for one scale and reference group (ECTS Users' Guide).

    Attributes:
        scale_id: the scale the grades are on.
        rows: (grade, cumulative percentage) best first: the percentage of *passing* grades
            awarded that were this grade or better, over the reference period. Only passing
            grades belong here; the last row is 100. A grade that was never awarded may be left
            out or given the previous row's percentage. Grades are symbols of the scale, or, on a
            continuous scale, numbers (never both in one table).

    Raises:
        ProtocolError: MALFORMED when the percentages are not a non-decreasing run of Decimals
            from 0 to 100 that ends at 100, or a grade appears twice.
    """

    scale_id: str
    rows: tuple[tuple[str, Decimal], ...]

    def __post_init__(self) -> None:
        rows = tuple((str(g), c) for g, c in self.rows)
        object.__setattr__(self, "rows", rows)
        problems: list[FieldProblem] = []
        if not rows:
            problems.append(FieldProblem("rows", "at least one passing grade"))
        previous = Decimal(0)
        seen: set[str] = set()
        for i, (grade, cumulative) in enumerate(rows):
            if not _is_number(cumulative) or not previous <= cumulative <= _HUNDRED:
                problems.append(
                    FieldProblem(f"rows[{i}]", "cumulative percentages: Decimals rising to 100")
                )
            else:
                previous = cumulative
            if _normalize(grade) in seen:
                problems.append(FieldProblem(f"rows[{i}]", f"{grade!r} appears twice"))
            seen.add(_normalize(grade))
        if rows and rows[-1][1] != _HUNDRED:
            problems.append(FieldProblem(f"rows[{len(rows) - 1}]", "the last row must be 100"))
        if problems:
            raise _malformed(f"bad grading table for {self.scale_id}", problems)

    @classmethod
    def from_counts(cls, scale_id: str, counts: Sequence[tuple[str, int | Decimal]]) -> GradeTable:
        """A table from how many times (or what share) each passing grade was awarded, best first.

        Raises:
            ProtocolError: MALFORMED for negative counts or a total of zero.
        """
        total = sum((Decimal(c) for _, c in counts), Decimal(0))
        if any(Decimal(c) < 0 for _, c in counts) or not total > 0:
            raise _malformed(
                f"bad grading table for {scale_id}",
                [FieldProblem("counts", "counts must be >= 0 with a positive total")],
            )
        rows: list[tuple[str, Decimal]] = []
        running = Decimal(0)
        with localcontext(_CONTEXT):
            for grade, count in counts:
                running += Decimal(count)
                rows.append((grade, running * _HUNDRED / total))
        return cls(scale_id, tuple(rows))


@dataclass(frozen=True)
class GradeDistribution:
    """The grading tables of one reference group (an ISCED-F field and a cycle), one per scale.

    Attributes:
        tables: at most one table per scale: typically the host's scale and the home's.
        isced_f: the field of the reference group (ISCED-F code), for the record.
        cycle: "bachelor", "master", ..., for the record.
        source: whose tables over which years, for the record.

    Raises:
        ProtocolError: MALFORMED when two tables are for the same scale.
    """

    tables: tuple[GradeTable, ...]
    isced_f: str = ""
    cycle: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", tuple(self.tables))
        ids = [t.scale_id for t in self.tables]
        duplicates = [
            FieldProblem(f"tables[{i}].scale_id", "one table per scale")
            for i, scale_id in enumerate(ids)
            if scale_id in ids[:i]
        ]
        if duplicates:
            raise _malformed("bad grade distribution", duplicates)

    def table(self, scale_id: str) -> GradeTable | None:
        """The table for scale_id, or None."""
        return next((t for t in self.tables if t.scale_id == scale_id), None)


@dataclass(frozen=True)
class GradeOverride:
    """An agreement's own grade mapping, which takes precedence over the other methods.

    Attributes:
        from_scale, to_scale: the direction it applies to (one direction only).
        mappings: source symbol → target symbol, e.g. {"A": "A", "B+": "A-"}. Each must be on its
            scale, and a mapping never turns a fail into a pass or a pass into a fail (checked
            when it is used). A grade without a mapping converts by the other methods.
        source: what the rule is, for the record: e.g. "IIA ynu.edu.cn–chula.ac.th v3, annex 2".
    """

    from_scale: str
    to_scale: str
    mappings: Mapping[str, str]
    source: str = ""


@dataclass(frozen=True)
class _Row:
    grade: _Placed
    low: Decimal  # percentile band (low, high], 0 = best
    high: Decimal


def _table_rows(scale: GradeScaleSpec, table: GradeTable, path: str) -> list[_Row]:
    """The table's rows placed on the scale and checked (passing, best first, one kind)."""
    rows: list[_Row] = []
    problems: list[FieldProblem] = []
    previous = Decimal(0)
    for i, (symbol, cumulative) in enumerate(table.rows):
        where = f"{path}.rows[{i}]"
        try:
            grade = _place(scale, symbol, "", where)
        except ProtocolError as error:
            problems.extend(error.field_problems)
            continue
        if grade.kind is not SymbolKind.GRADED or grade.position is None:
            problems.append(FieldProblem(where, "only passing grades with a place on the scale"))
            continue
        if rows:
            last = rows[-1].grade
            if (last.spec is None) != (grade.spec is None):
                problems.append(FieldProblem(where, "symbols and numbers cannot be mixed"))
            elif last.position is not None and (grade.position, -grade.order) >= (
                last.position,
                -last.order,
            ):
                problems.append(FieldProblem(where, "rows must run from the best grade down"))
        rows.append(_Row(grade, previous, cumulative))
        previous = cumulative
    if problems:
        raise _malformed(f"bad grading table for {scale.id}", problems)
    return rows


def _locate(rows: Sequence[_Row], grade: _Placed) -> tuple[Decimal, Decimal, bool]:
    """The grade's percentile band in the table, and whether the table lists it."""
    for row in rows:
        listed = row.grade
        same = listed.symbol == grade.symbol and listed.spec is grade.spec
        if grade.spec is None and grade.value is not None:
            if listed.spec is None:
                same = listed.value == grade.value
            elif listed.spec.band is not None:
                same = _in_band(grade.scale, listed.spec.band, grade.value)
            else:
                same = listed.spec.numeric == grade.value
        if same:
            return row.low, row.high, True
    assert grade.position is not None
    better = [
        row
        for row in rows
        if row.grade.position is not None
        and (
            row.grade.position > grade.position
            or (row.grade.position == grade.position and row.grade.order < grade.order)
        )
    ]
    point = better[-1].high if better else Decimal(0)
    return point, point, False


def _choose(rows: Sequence[_Row], low: Decimal, high: Decimal) -> _Row:
    """The target row whose band overlaps (low, high] most; for an empty band, the one holding it.

    Both choices are monotone: a band further down never picks a better row.
    """
    if low < high:
        middle = (low + high) / 2

        def overlap(row: _Row) -> tuple[Decimal, Decimal]:
            size = min(high, row.high) - max(low, row.low)
            return size, -abs((row.low + row.high) / 2 - middle)

        return max((r for r in rows if overlap(r)[0] > 0), key=overlap)
    for row in rows:
        if row.high > low:
            return row
    return [r for r in rows if r.low < r.high][-1]


def _shares_table(scale: GradeScaleSpec) -> GradeTable | None:
    if not scale.shares:
        return None
    running = Decimal(0)
    rows = []
    for symbol, share in scale.shares:
        running += share
        rows.append((symbol, running))
    return GradeTable(scale.id, tuple(rows))


# --- grades: conversion ----------------------------------------------------------------------


@dataclass(frozen=True)
class GradeConversion:
    """A suggested grade on the target scale, with its method and inputs.

    Attributes:
        from_scale, from_symbol: the grade converted (symbol as normalised).
        to_scale: the target scale.
        symbol: the suggested symbol (a number as text on a continuous scale such as cn-100), or
            None when there is no grade to suggest (no result; an ungraded pass on a scale
            without an ungraded pass symbol).
        numeric: the suggested grade's value on the target scale, when it has one.
        passing: whether the suggestion is a pass; always the same as the source grade.
        method: how the suggestion was made.
        inputs: the figures used, as text, by name.
        notes: English sentences on what was chosen and why.
        suggestion: always True: the result is a suggestion (see SUGGESTION).
    """

    from_scale: str
    from_symbol: str
    to_scale: str
    symbol: str | None
    numeric: Decimal | None
    passing: bool
    method: GradeMethod
    inputs: Mapping[str, str]
    notes: tuple[str, ...]
    suggestion: Literal[True] = field(default=True, init=False)

    def to_grade(self) -> Grade | None:
        """The suggestion as a wire Grade, or None when there is no grade to suggest."""
        if self.symbol is None:
            return None
        numeric = "" if self.numeric is None else plain(self.numeric)
        return Grade(scale_id=self.to_scale, symbol=self.symbol, numeric=numeric)

    @property
    def summary(self) -> str:
        """One English sentence: the suggestion and its method."""
        outcome = self.symbol if self.symbol is not None else "no grade"
        if self.symbol is None and self.passing:
            outcome = "a pass without a grade"
        return (
            f"Suggested {outcome} on {self.to_scale} for {self.from_symbol} on {self.from_scale} "
            f"by {self.method.value}: {SUGGESTION}."
        )


def convert_grade(
    grade: Grade,
    to_scale: str,
    *,
    distribution: GradeDistribution | None = None,
    override: GradeOverride | None = None,
    scales: Mapping[str, GradeScaleSpec] | None = None,
) -> GradeConversion:
    """Suggest the grade on to_scale that corresponds to grade.

    An agreement's mapping for the grade's symbol (override) comes first. Otherwise a fail
    becomes the target's fail symbol, an ungraded pass the target's ungraded pass, and withdrawn or
    incomplete no grade. A graded pass converts by the grading tables of distribution when it has
    one for both scales (a scale with fixed shares, ECTS A–E, brings its own): the source grade's
    percentile band among passing grades is matched with the target grade whose band overlaps it
    most. Otherwise by scale mapping: the grade's linear position between the pass mark and the
    best grade (direction-aware) is carried to the same position on the target scale, taking the
    nearest target symbol, or on a continuous target scale the value rounded to its step. Either
    way a pass stays a pass and a better grade never gets a worse suggestion.

    Args:
        grade: the grade; its symbol must be on its scale (or a number on a continuous scale);
            its numeric, if given, must agree with the symbol.
        to_scale: the target scale ID.
        distribution: grading tables of the reference group (field and cycle).
        override: an agreement's mapping for grade.scale_id → to_scale.
        scales: the scales to use, by ID; the built-in GRADE_SCALES when None.

    Raises:
        ProtocolError: MALFORMED for an unknown scale, a symbol not on the scale, a numeric that
            is not a decimal string or disagrees with the symbol, a bad grading table, or an
            override for another pair of scales, with a symbol not on its scale or turning a
            fail into a pass (or a pass into a fail).
    """
    known = GRADE_SCALES if scales is None else scales
    source, target = known.get(grade.scale_id), known.get(to_scale)
    problems: list[FieldProblem] = []
    if source is None:
        problems.append(
            FieldProblem("grade.scale_id", _unknown("grade scale", grade.scale_id, known))
        )
    if target is None:
        problems.append(FieldProblem("to_scale", _unknown("grade scale", to_scale, known)))
    if override is not None and (override.from_scale, override.to_scale) != (
        grade.scale_id,
        to_scale,
    ):
        problems.append(
            FieldProblem(
                "override",
                f"is for {override.from_scale} → {override.to_scale}, "
                f"not {grade.scale_id} → {to_scale}",
            )
        )
    if problems or source is None or target is None:
        raise _malformed("cannot convert this grade", problems)
    with localcontext(_CONTEXT):
        placed = _place(source, grade.symbol, grade.numeric, "grade")
        tables = _tables(source, target, distribution)
        mapped = None if override is None else _mapping(placed, target, override)
        return _convert_grade(placed, target, distribution, tables, override, mapped)


def _mapping(grade: _Placed, target: GradeScaleSpec, override: GradeOverride) -> _Placed | None:
    """The override's target for grade, after checking every mapping; None if it has none."""
    problems: list[FieldProblem] = []
    found: _Placed | None = None
    for key, value in override.mappings.items():
        where = f"override.mappings[{key}]"
        try:
            mapped_from = _place(grade.scale, key, "", where)
            mapped_to = _place(target, value, "", where)
        except ProtocolError as error:
            problems.extend(error.field_problems)
            continue
        if _passing(mapped_from) != _passing(mapped_to):
            problems.append(FieldProblem(where, "must not turn a fail into a pass or the reverse"))
        elif _same_grade(mapped_from, grade):
            found = mapped_to
    if problems:
        raise _malformed("bad grade override", problems)
    return found


def _passing(grade: _Placed) -> bool:
    return grade.kind in (SymbolKind.GRADED, SymbolKind.UNGRADED)


def _same_grade(a: _Placed, b: _Placed) -> bool:
    if a.spec is None or b.spec is None:
        return a.spec is b.spec and a.value == b.value
    return a.spec is b.spec


def _tables(
    source: GradeScaleSpec, target: GradeScaleSpec, distribution: GradeDistribution | None
) -> tuple[list[_Row], list[_Row]] | None:
    """Both scales' table rows, checked; None when a table is missing."""
    if distribution is None:
        return None
    found: list[list[_Row] | None] = []
    for scale in (source, target):
        table = distribution.table(scale.id)
        path = "distribution"
        if table is not None:
            path = f"distribution.tables[{distribution.tables.index(table)}]"
        else:
            table = _shares_table(scale)
        found.append(None if table is None else _table_rows(scale, table, path))
    src_rows, tgt_rows = found
    if src_rows is None or tgt_rows is None:
        return None
    return src_rows, tgt_rows


def _result(
    grade: _Placed,
    target: GradeScaleSpec,
    symbol: str | None,
    numeric: Decimal | None,
    passing: bool,
    method: GradeMethod,
    inputs: dict[str, str],
    notes: list[str],
) -> GradeConversion:
    return GradeConversion(
        from_scale=grade.scale.id,
        from_symbol=grade.symbol,
        to_scale=target.id,
        symbol=symbol,
        numeric=numeric,
        passing=passing,
        method=method,
        inputs=inputs,
        notes=tuple(notes),
    )


def _convert_grade(
    grade: _Placed,
    target: GradeScaleSpec,
    distribution: GradeDistribution | None,
    tables: tuple[list[_Row], list[_Row]] | None,
    override: GradeOverride | None,
    mapped: _Placed | None,
) -> GradeConversion:
    source = grade.scale
    inputs: dict[str, str] = {
        "from.scale": source.id,
        "from.symbol": grade.symbol,
        "from.kind": grade.kind.value,
        "to.scale": target.id,
    }
    if grade.position is not None:
        inputs["from.position"] = _shown(grade.position)
    notes: list[str] = []

    if source.id == target.id:
        numeric = grade.spec.numeric if grade.spec is not None else grade.value
        return _result(
            grade,
            target,
            grade.symbol,
            numeric,
            _passing(grade),
            GradeMethod.IDENTITY,
            inputs,
            notes,
        )
    if override is not None:
        inputs["override.source"] = override.source or "(not named)"
        if mapped is not None:
            inputs["override.mapping"] = f"{grade.symbol} → {mapped.symbol}"
            numeric = mapped.spec.numeric if mapped.spec is not None else mapped.value
            return _result(
                grade,
                target,
                mapped.symbol,
                numeric,
                _passing(mapped),
                GradeMethod.OVERRIDE,
                inputs,
                notes,
            )
        notes.append(f"the override has no mapping for {grade.symbol}: the default method is used")
    if grade.kind is SymbolKind.NO_RESULT:
        notes.append(f"{grade.symbol} records no result: there is nothing to convert")
        return _result(grade, target, None, None, False, GradeMethod.NO_RESULT, inputs, notes)
    if grade.kind is SymbolKind.FAIL:
        fail = target.symbol(target.fail_symbol)
        numeric = None if fail is None else fail.numeric
        notes.append("a fail always converts to a fail")
        return _result(
            grade, target, target.fail_symbol, numeric, False, GradeMethod.FAIL, inputs, notes
        )
    if grade.kind is SymbolKind.UNGRADED:
        if target.ungraded_symbol is None:
            notes.append(f"{target.id} has no ungraded pass: recognise as a pass without a grade")
        return _result(
            grade, target, target.ungraded_symbol, None, True, GradeMethod.UNGRADED, inputs, notes
        )

    if distribution is not None:
        inputs.update(
            {
                f"distribution.{name}": value
                for name, value in (
                    ("isced_f", distribution.isced_f),
                    ("cycle", distribution.cycle),
                    ("source", distribution.source),
                )
                if value
            }
        )
        if tables is not None:
            return _by_distribution(grade, target, distribution, tables, inputs, notes)
        missing = [
            s.id for s in (source, target) if distribution.table(s.id) is None and not s.shares
        ]
        notes.append(
            f"no grading table for {' and '.join(missing)}: converted by scale mapping instead"
        )
    return _by_scale(grade, target, inputs, notes)


def _band_text(low: Decimal, high: Decimal) -> str:
    return f"{_shown(low, 2)}–{_shown(high, 2)} %"


def _by_distribution(
    grade: _Placed,
    target: GradeScaleSpec,
    distribution: GradeDistribution,
    tables: tuple[list[_Row], list[_Row]],
    inputs: dict[str, str],
    notes: list[str],
) -> GradeConversion:
    src_rows, tgt_rows = tables
    low, high, listed = _locate(src_rows, grade)
    row = _choose(tgt_rows, low, high)
    for scale in (grade.scale, target):
        if distribution.table(scale.id) is None:
            notes.append(f"{scale.id}: the scale's fixed shares serve as its grading table")
    if not listed:
        notes.append(
            f"{grade.symbol} is not in the {grade.scale.id} grading table (not awarded in the "
            "reference period): it takes the table's percentile at its place in the order"
        )
    inputs["from.percentile_band"] = _band_text(low, high)
    inputs["to.percentile_band"] = _band_text(row.low, row.high)
    chosen = row.grade
    if chosen.spec is not None:
        symbol, numeric = chosen.spec.symbol, chosen.spec.numeric
    else:
        assert chosen.value is not None
        symbol, numeric = _format(chosen.value, target.min_decimals), chosen.value
    return _result(grade, target, symbol, numeric, True, GradeMethod.DISTRIBUTION, inputs, notes)


def _by_scale(
    grade: _Placed, target: GradeScaleSpec, inputs: dict[str, str], notes: list[str]
) -> GradeConversion:
    position = grade.position
    assert position is not None and 0 <= position <= 1
    numeric: Decimal | None
    if target.continuous and not any(
        s.kind is SymbolKind.GRADED and s.numeric is not None for s in target.symbols
    ):
        best, passing, step = target.best, target.pass_mark, target.step
        assert best is not None and passing is not None and step is not None
        exact = passing + position * (best - passing)
        # Ties round in the student's favour: up on a higher-is-better scale, down otherwise.
        rounding = ROUND_HALF_UP if target.direction == HIGHER_IS_BETTER else ROUND_HALF_DOWN
        value = _round(exact, step, rounding)
        inputs["to.value"] = _shown(exact)
        inputs["rounding"] = f"to a multiple of {plain(step)}, halves in the student's favour"
        for band in target.symbols:
            if band.kind is SymbolKind.GRADED and band.band and _in_band(target, band.band, value):
                notes.append(f"{_format(value, target.min_decimals)} is in band {band.symbol}")
        symbol, numeric = _format(value, target.min_decimals), value
    else:
        candidates: list[tuple[Decimal, int, GradeSymbolSpec]] = []
        for i, s in enumerate(target.symbols):
            place = _position(target, s.kind, s.value, i)
            if s.kind is SymbolKind.GRADED and place is not None:
                candidates.append((place, i, s))
        # Nearest position; midway: the better symbol; a shared grade point (A+/A): the plainer,
        # later-listed symbol, since the point cannot tell them apart.
        spot, _, chosen = min(candidates, key=lambda c: (abs(c[0] - position), -c[0], -c[1]))
        inputs["to.position"] = _shown(spot)
        symbol, numeric = chosen.symbol, chosen.numeric
    inputs["method"] = "linear position between the pass mark (0) and the best grade (1)"
    return _result(grade, target, symbol, numeric, True, GradeMethod.SCALE_MAPPING, inputs, notes)
