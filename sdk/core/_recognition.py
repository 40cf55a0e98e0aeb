"""A recognition line from a transcript line: credits and grade converted by the conversion
engine, each with its method and inputs, the grade as suggested and as home confirms it (spec
RCG-1, the EGRACONS practice: a conversion is a suggestion the recognition decision confirms)."""

from __future__ import annotations

from collections.abc import Mapping

from sseaun.v1.records_pb2 import (
    ConversionInput,
    CreditConversion,
    GradeConversion,
    RecognitionLine,
    RecognitionOutcome,
    TranscriptLine,
)
from sseaun.v1.types_pb2 import Grade, MultilingualText

from ._conversion import (
    ConversionOverride,
    GradeDistribution,
    GradeOverride,
    convert_credits,
    convert_grade,
)

__all__ = ["recognition_line"]


def _inputs(values: Mapping[str, str]) -> list[ConversionInput]:
    return [ConversionInput(key=k, value=v) for k, v in sorted(values.items())]


def recognition_line(
    line: TranscriptLine,
    *,
    to_scheme: str,
    to_scale: str,
    home_course_code: str = "",
    home_course_title: MultilingualText | None = None,
    confirmed_grade: Grade | None = None,
    credit_override: ConversionOverride | None = None,
    grade_override: GradeOverride | None = None,
    distribution: GradeDistribution | None = None,
) -> RecognitionLine:
    """The line recognising a passed transcript line, with converted credits and grade.

    The grade home records is confirmed_grade when given (home may differ from the suggestion),
    else the suggestion; both are kept, with the method and the figures used.

    Raises:
        ProtocolError: MALFORMED for an unknown scheme or scale, or a grade not on its scale.
    """
    credits = convert_credits(line.credits, to_scheme, override=credit_override)
    converted_credits = credits.to_credit_value()
    out = RecognitionLine(
        transcript_line_id=line.line_id,
        outcome=RecognitionOutcome.RECOGNITION_OUTCOME_RECOGNISED,
        credits=CreditConversion(
            original=line.credits,
            converted=converted_credits,
            method=credits.method.value,
            inputs=_inputs(credits.inputs),
        ),
        home_course_code=home_course_code,
        recognised_credits=converted_credits,
    )
    if home_course_title is not None:
        out.home_course_title.CopyFrom(home_course_title)
    if line.HasField("grade"):
        grade = convert_grade(
            line.grade, to_scale, distribution=distribution, override=grade_override
        )
        suggested = grade.to_grade()
        conversion = GradeConversion(
            original=line.grade, method=grade.method.value, inputs=_inputs(grade.inputs)
        )
        if suggested is not None:
            conversion.suggested.CopyFrom(suggested)
        confirmed = confirmed_grade if confirmed_grade is not None else suggested
        if confirmed is not None:
            conversion.converted.CopyFrom(confirmed)
        out.grade.CopyFrom(conversion)
    return out
