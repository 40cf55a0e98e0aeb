"""A recognition line built from a transcript line by the conversion engine (spec RCG-1)."""

from __future__ import annotations

import pytest

from sseaun.sdk.core import ProtocolError, Reason, recognition_line
from sseaun.v1.records_pb2 import CourseResultStatus, RecognitionOutcome, TranscriptLine
from sseaun.v1.types_pb2 import CreditValue, Grade


def line(scheme: str = "th-credit", value: str = "3", grade: Grade | None = None) -> TranscriptLine:
    out = TranscriptLine(
        line_id="l1",
        course_code="2110101",
        credits=CreditValue(scheme_id=scheme, value=value),
        attempt=1,
        status=CourseResultStatus.COURSE_RESULT_STATUS_PASSED,
    )
    if grade is not None:
        out.grade.CopyFrom(grade)
    return out


def test_credits_and_grade_are_converted_with_method_and_inputs() -> None:
    got = recognition_line(
        line(grade=Grade(scale_id="th-4.0", symbol="B+")),
        to_scheme="ects",
        to_scale="cn-100",
        home_course_code="CS101",
    )
    assert got.outcome == RecognitionOutcome.RECOGNITION_OUTCOME_RECOGNISED
    assert got.credits.original.value == "3" and got.credits.converted.scheme_id == "ects"
    assert got.recognised_credits == got.credits.converted
    assert got.credits.method and {i.key for i in got.credits.inputs} >= {"from.value"}
    assert got.grade.original.symbol == "B+"
    assert got.grade.suggested.scale_id == "cn-100"
    assert got.grade.converted == got.grade.suggested  # nothing confirmed: the suggestion
    assert got.grade.method and got.grade.inputs


def test_home_may_confirm_another_grade_and_the_suggestion_is_kept() -> None:
    confirmed = Grade(scale_id="cn-100", symbol="88", numeric="88")
    got = recognition_line(
        line(grade=Grade(scale_id="th-4.0", symbol="B+")),
        to_scheme="cn-credit",
        to_scale="cn-100",
        confirmed_grade=confirmed,
    )
    assert got.grade.converted == confirmed
    assert got.grade.suggested != confirmed


def test_an_ungraded_line_has_credits_only() -> None:
    got = recognition_line(line(), to_scheme="cn-credit", to_scale="cn-100")
    assert not got.HasField("grade") and got.recognised_credits.scheme_id == "cn-credit"


def test_an_unknown_scheme_is_malformed() -> None:
    with pytest.raises(ProtocolError) as info:
        recognition_line(line(scheme="xx-credit"), to_scheme="cn-credit", to_scale="cn-100")
    assert info.value.reason is Reason.MALFORMED
