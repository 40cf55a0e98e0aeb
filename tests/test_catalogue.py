"""The catalogue importer: CSV/JSON course and profile exports, problems with lines, signing."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseaun.sdk.core import ProtocolError, Reason, payload_types, verify_envelope
from sseaun.sdk.core._catalogue import (
    COURSE_FIELDS,
    COURSES_PARENT,
    DEFAULT_SCHEMES,
    CourseRow,
    ParsedCourses,
    RowProblem,
    batch_id,
    batches,
    course_content_digest,
    course_record_name,
    file_digest,
    guess_format,
    parse_courses,
    parse_profile,
    profile_record_name,
    sign_course,
    sign_profile,
    validate_course,
    validate_profile,
)
from sseaun.v1.catalogue_pb2 import Course, CourseLevel, InstitutionProfile
from sseaun.v1.types_pb2 import CreditValue, LocalizedText, MultilingualText
from tests.factories import seeded

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalogue"
YNU = seeded("ynu-issuing")
T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)

REGIONAL_CSV = (
    "code,title:zh-Hans,title:th,title:bn,title:ms,title:en,credits,credit_scheme,level,"
    "languages,unit,isced_f\n"
    "CS101,程序设计基础,การเขียนโปรแกรมเบื้องต้น,প্রোগ্রামিংয়ের মৌলিক বিষয়,Asas Pengaturcaraan,"
    "Fundamentals of Programming,4,cn-credit,bachelor,zh-Hans;en,SISE,0613\n"
    'TH201,,ภาษาไทยเพื่อการสื่อสาร,,,Thai for Communication,3,th-credit,Bachelor,"th, en",ARTS,0231\n'
    "BN110,,,বাংলা সাহিত্য,,Bengali Literature,3,bd-ugc,MASTER,bn,,0232\n"
    "MY300,,,,Pengajian Malaysia,Malaysian Studies,2,my-mqa,short-cycle,ms;en,,0314\n"
)


def lines_and_fields(parsed: ParsedCourses) -> list[tuple[int, str]]:
    return [(p.line, p.field) for p in parsed.problems]


def titles(course: Course) -> dict[str, str]:
    return {t.lang: t.text for t in course.titles.texts}


# --- valid files -----------------------------------------------------------------------------


def test_a_csv_with_chinese_thai_bengali_and_malay_titles_parses() -> None:
    parsed = parse_courses(REGIONAL_CSV, fmt="csv")
    assert parsed.ok and parsed.problems == []
    assert parsed.row_count == 4
    assert [r.line for r in parsed.rows] == [2, 3, 4, 5]
    cs, th, bn, my = (r.course for r in parsed.rows)
    assert titles(cs) == {
        "zh-Hans": "程序设计基础",
        "th": "การเขียนโปรแกรมเบื้องต้น",
        "bn": "প্রোগ্রামিংয়ের মৌলিক বিষয়",
        "ms": "Asas Pengaturcaraan",
        "en": "Fundamentals of Programming",
    }
    assert cs.credits == CreditValue(scheme_id="cn-credit", value="4")
    assert cs.level == CourseLevel.COURSE_LEVEL_BACHELOR
    assert list(cs.languages) == ["zh-Hans", "en"]
    assert (cs.unit_code, cs.isced_f_code) == ("SISE", "0613")
    assert not cs.HasField("header") and not cs.HasField("description")
    assert titles(th) == {"th": "ภาษาไทยเพื่อการสื่อสาร", "en": "Thai for Communication"}
    assert list(th.languages) == ["th", "en"]
    assert bn.level == CourseLevel.COURSE_LEVEL_MASTER and bn.credits.scheme_id == "bd-ugc"
    assert my.level == CourseLevel.COURSE_LEVEL_SHORT_CYCLE and titles(my)["ms"]


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_bom_is_ignored(as_bytes: bool) -> None:
    text = "\ufeff" + REGIONAL_CSV
    parsed = parse_courses(text.encode() if as_bytes else text, fmt="csv")
    assert parsed.ok, parsed.problems
    assert parsed.rows[0].course.code == "CS101"


def test_text_is_stripped_and_kept_as_written() -> None:
    nfd_title = "Cafe\u0301 culture"
    text = f"code , title:en ,credits,credit_scheme\n  X 1  ,  {nfd_title}  , 3.0 ,ECTS\n"
    parsed = parse_courses(text, fmt="csv")
    assert parsed.ok, parsed.problems
    course = parsed.rows[0].course
    assert course.code == "X 1"
    assert titles(course) == {"en": nfd_title}  # not normalised to NFC
    assert course.credits == CreditValue(scheme_id="ects", value="3.0")  # never a float


def test_language_tags_get_their_conventional_case() -> None:
    text = (
        "code,title:ZH-hans,title:EN-gb,credits,credit_scheme,languages\n"
        "A,甲,A,1,ects,ZH-HANS-cn;en\n"
    )
    parsed = parse_courses(text, fmt="csv")
    assert parsed.ok, parsed.problems
    course = parsed.rows[0].course
    assert [t.lang for t in course.titles.texts] == ["zh-Hans", "en-GB"]
    assert list(course.languages) == ["zh-Hans-CN", "en"]


def test_blank_lines_are_skipped_and_lines_stay_physical() -> None:
    text = (
        "code,title:en,credits,credit_scheme,description:en\n"
        "\n"
        'A1,One,3,ects,"first line\nsecond line"\n'
        ",,,,\n"
        "A2,Two,abc,ects,\n"
        "\n\n\n"
    )
    parsed = parse_courses(text, fmt="csv")
    assert lines_and_fields(parsed) == [(6, "credits")]
    assert parsed.row_count == 2


def test_a_semicolon_or_tab_delimited_export_is_read() -> None:
    for delimiter in (";", "\t"):
        text = delimiter.join(["code", "title:en", "credits", "credit_scheme", "languages"])
        text += "\n" + delimiter.join(["A1", "Algebra", "7.5", "ects", "en,ms"]) + "\n"
        parsed = parse_courses(text, fmt="csv")
        assert parsed.ok, parsed.problems
        assert list(parsed.rows[0].course.languages) == ["en", "ms"]


def test_the_caller_sets_the_schemes_the_default_scheme_and_the_units() -> None:
    text = "code,title:en,credits,unit\nA1,One,3,ENG\nA2,Two,3,XYZ\n"
    parsed = parse_courses(
        text, fmt="csv", known_schemes={"th-credit"}, default_scheme="th-credit",
        known_units={"ENG"},
    )  # fmt: skip
    assert lines_and_fields(parsed) == [(3, "unit")]
    parsed = parse_courses(text, fmt="csv", default_scheme="th-credit")
    assert parsed.ok and parsed.rows[1].course.credits.scheme_id == "th-credit"
    no_default = parse_courses(text, fmt="csv")
    assert lines_and_fields(no_default) == [(1, "credit_scheme")]
    with_unknown_default = parse_courses(text, fmt="csv", known_schemes={"ects"},
                                         default_scheme="th-credit")  # fmt: skip
    assert lines_and_fields(with_unknown_default) == [(2, "credit_scheme"), (3, "credit_scheme")]
    anything = parse_courses(
        "code,title:en,credits,credit_scheme\nA,B,1,xx-new\n", fmt="csv", known_schemes=None
    )
    assert anything.ok


def test_the_default_schemes_cover_the_regional_table() -> None:
    assert {"ects", "cn-credit", "th-credit", "my-mqa", "bd-ugc", "id-sks", "vn-credit"} <= (
        DEFAULT_SCHEMES
    )
    assert all(s == s.lower() for s in DEFAULT_SCHEMES)


# --- invalid files ---------------------------------------------------------------------------

BAD_CSV = (
    "code,title:en,credits,credit_scheme,level,languages,colour\n"  # 1: unknown column
    "A1,Algebra,3,ects,bachelor,en,red\n"  # 2: fine
    ",No code,3,ects,,,\n"  # 3: missing code
    "A2,Bad credits,abc,ects,,,\n"  # 4
    "A3,Negative credits,-1,ects,,,\n"  # 5
    "A4,Float-looking credits,3.0,ects,,,\n"  # 6: fine, kept as 3.0
    "A5,Unknown scheme,3,xx-credit,,,\n"  # 7
    "A6,Bad level,3,ects,phd,,\n"  # 8
    "A7,Bad language,3,ects,,english,\n"  # 9
    "Caf\u00e9,Composed,3,ects,,,\n"  # 10: duplicate of 11 after NFC
    "Cafe\u0301,Decomposed,3,ects,,,\n"  # 11
    "A8,Zero credits,0,ects,,,\n"  # 12: credits must be > 0
    "\n\n"
)


def test_every_problem_is_reported_with_its_line() -> None:
    parsed = parse_courses(BAD_CSV, fmt="csv")
    assert not parsed.ok
    assert parsed.rows == []  # an invalid file imports nothing
    assert parsed.row_count == 11
    assert lines_and_fields(parsed) == [
        (1, "colour"),
        (3, "code"),
        (4, "credits"),
        (5, "credits"),
        (7, "credit_scheme"),
        (8, "level"),
        (9, "languages"),
        (10, "code"),
        (11, "code"),
        (12, "credits"),
    ]
    messages = {(p.line, p.field): p.message for p in parsed.problems}
    assert "'colour'" in messages[1, "colour"] and "unknown column" in messages[1, "colour"]
    assert "'abc'" in messages[4, "credits"]
    assert "greater than 0" in messages[5, "credits"]
    assert "xx-credit" in messages[7, "credit_scheme"]
    assert "'english'" in messages[9, "languages"]
    assert "lines 10, 11" in messages[10, "code"] and "lines 10, 11" in messages[11, "code"]
    assert "NFC" in messages[11, "code"]
    assert str(parsed.problems[1]) == f"line 3: code: {messages[3, 'code']}"


def test_the_valid_rows_of_an_invalid_file_would_have_been_fine() -> None:
    keep = [line for i, line in enumerate(BAD_CSV.splitlines()) if i + 1 in (1, 2, 6)]
    header = keep[0].replace(",colour", "")
    rows = [line.removesuffix(",red").removesuffix(",") for line in keep[1:]]
    parsed = parse_courses("\n".join([header, *rows]), fmt="csv")
    assert parsed.ok, parsed.problems
    assert [r.course.credits.value for r in parsed.rows] == ["3", "3.0"]


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("7,5", "'.'"),
        ("1e3", "decimal number"),
        ("+3", "decimal number"),
        (".5", "decimal number"),
        ("NaN", "decimal number"),
        ("00", "decimal number"),
        ("0.0", "greater than 0"),
        ("12345", "at most 4 digits"),
        ("٣", "decimal number"),  # Arabic-Indic digit: ASCII digits only
    ],
)
def test_credits_are_decimal_strings(cell: str, fragment: str) -> None:
    parsed = parse_courses(f'code,title:en,credits,credit_scheme\nA,B,"{cell}",ects\n', fmt="csv")
    assert lines_and_fields(parsed) == [(2, "credits")]
    assert fragment in parsed.problems[0].message


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("level", "Year 2"),
        ("languages", "en_US"),
        ("languages", "th;x"),
        ("languages", "中文"),
        ("isced_f", "613"),
        ("isced_f", "1234"),
        ("isced_f", "06130"),
        ("unit", "-bad"),
        ("code", "CS%101"),
        ("code", "C" * 65),
        ("title:en", "tab\there"),
        ("title:en", "mojibake \ufffd"),
    ],
)
def test_each_field_rule(column: str, value: str) -> None:
    columns = {"code": "A1", "title:en": "Title", "credits": "3", "credit_scheme": "ects"}
    columns[column] = value
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns.keys())
    writer.writerow(columns.values())
    parsed = parse_courses(out.getvalue(), fmt="csv")
    assert lines_and_fields(parsed) == [(2, column)], parsed.problems


def test_header_problems_are_on_line_1() -> None:
    text = "Code,title,title:en,TITLE:EN,credits:en,,description:klingon-language\nA,B,C,D,3,,\n"
    parsed = parse_courses(text, fmt="csv")
    fields = lines_and_fields(parsed)
    assert all(line == 1 for line, _ in fields), fields
    assert [f for _, f in fields] == [
        "title",
        "TITLE:EN",
        "credits:en",
        "",
        "description:klingon-language",
        "credits",
        "credit_scheme",
    ]
    assert parsed.rows == []


def test_a_row_with_more_cells_than_the_header() -> None:
    text = "code,title:en,credits,credit_scheme\nA,Algebra, linear,3,ects\n"
    parsed = parse_courses(text, fmt="csv")
    assert lines_and_fields(parsed)[0] == (2, "")
    assert "quote" in parsed.problems[0].message


def test_bad_csv_quoting_is_a_problem_on_its_line() -> None:
    text = (
        'code,title:en,credits,credit_scheme\nA,"Alg"ebra,3,ects\nB,Fine,3,ects\nC,"open,3,ects\n'
    )
    parsed = parse_courses(text, fmt="csv")
    assert [p.line for p in parsed.problems] == [2, 4]
    assert all("CSV" in p.message for p in parsed.problems)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("code,title:en,credits,credit_scheme\n", "no course"),
        (b"\xff\xfec\x00o\x00d\x00e\x00", "UTF-16"),
        (b"code,title:en\n" + "甲".encode("gbk"), "not UTF-8"),
        ("\udcff", "not Unicode"),
        ("\x00\x01\x02\x03", "unknown column"),
    ],
)
def test_garbage_gives_a_problem_on_line_1(data: str | bytes, fragment: str) -> None:
    for fmt in ("csv", "json"):
        parsed = parse_courses(data, fmt=fmt)
        assert not parsed.ok and parsed.rows == []
        assert parsed.problems[0].line == 1
    assert fragment in " ".join(p.message for p in parse_courses(data, fmt="csv").problems)


def test_an_encoding_problem_names_the_line_of_the_bad_byte() -> None:
    data = b"code,title:th,credits,credit_scheme\n" + "ก,ไทย,3,th-credit\n".encode("tis-620")
    parsed = parse_courses(data, fmt="csv")
    assert [(p.line, p.field) for p in parsed.problems] == [(1, "")]
    assert "on line 2" in parsed.problems[0].message


# --- JSON ------------------------------------------------------------------------------------

CHULA_JSON = """[
  {"code": "2110101", "title": {"th": "การเขียนโปรแกรมคอมพิวเตอร์", "en": "Computer Programming"},
   "credits": "3", "credit_scheme": "th-credit", "level": "bachelor", "languages": ["th", "en"]},
  {"code": "2301107", "title:th": "แคลคูลัส 1", "title:en": "Calculus I",
   "credits": 3, "credit_scheme": "th-credit", "languages": "th", "isced_f": "0541"},
  {"code": "2403274", "title": {"en": "Politics in Southeast Asia"}, "title:th": "การเมือง",
   "description": {"en": "States and regionalism."}, "credits": 7.5, "credit_scheme": "ects",
   "unit": null, "level": null}
]"""


def test_a_json_list_of_courses() -> None:
    parsed = parse_courses(CHULA_JSON, fmt="json")
    assert parsed.ok, parsed.problems
    assert [(r.line, r.item) for r in parsed.rows] == [(2, 1), (4, 2), (6, 3)]
    first, second, third = (r.course for r in parsed.rows)
    assert titles(first) == {"th": "การเขียนโปรแกรมคอมพิวเตอร์", "en": "Computer Programming"}
    assert list(first.languages) == ["th", "en"]
    assert second.credits.value == "3" and second.isced_f_code == "0541"
    assert third.credits == CreditValue(scheme_id="ects", value="7.5")  # a JSON number as written
    assert titles(third) == {"en": "Politics in Southeast Asia", "th": "การเมือง"}
    assert third.description.texts[0].text == "States and regionalism."


def test_a_json_object_with_courses() -> None:
    wrapped = '{\n  "courses": ' + CHULA_JSON.replace("\n", "\n  ") + "\n}"
    parsed = parse_courses(wrapped, fmt="json")
    assert parsed.ok, parsed.problems
    assert [(r.line, r.item) for r in parsed.rows] == [(3, 1), (5, 2), (7, 3)]
    assert [r.course for r in parsed.rows] == [
        r.course for r in parse_courses(CHULA_JSON, fmt="json").rows
    ]


def test_json_problems_name_the_item_and_its_line() -> None:
    text = """[
  {"code": "X1", "title": {"en": "A", "EN": "B"}, "credits": "3", "credit_scheme": "ects"},
  {"code": 101, "title:en": "B", "credits": 1e3, "credit_scheme": "ects", "extra": 1},
  "not an object",
  {"code": "X1", "title": "plain", "credits": "2", "credit_scheme": "ects",
   "languages": ["en", 5], "code": "X2"},
  {"code": "X3", "title": {"en": "C"}, "credits": -1, "credit_scheme": "ects", "level": true}
]"""
    parsed = parse_courses(text, fmt="json")
    got = [(p.line, p.item, p.field) for p in parsed.problems]
    assert got == [
        (2, 1, "title:en"),
        (3, 2, "extra"),
        (3, 2, "code"),
        (3, 2, "credits"),
        (4, 3, ""),
        (5, 4, "code"),
        (5, 4, "title"),
        (5, 4, "languages[1]"),
        (7, 5, "credits"),
        (7, 5, "level"),
    ]
    assert 'write "101"' in parsed.problems[2].message
    assert "'1e3'" in parsed.problems[3].message
    assert str(parsed.problems[4]).startswith("line 4 (item 3): ")
    assert parsed.rows == []


def test_json_duplicates_are_found_by_item_even_on_one_line() -> None:
    course = {"code": "Caf\u00e9", "title": {"en": "x"}, "credits": "1", "credit_scheme": "ects"}
    other = dict(course, code="Cafe\u0301")
    parsed = parse_courses(json.dumps([course, other], ensure_ascii=False), fmt="json")
    assert [(p.line, p.item, p.field) for p in parsed.problems] == [(1, 1, "code"), (1, 2, "code")]
    assert "items 1, 2" in parsed.problems[0].message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[\n  {"code": "A",\n  "title": {"en": "x"}\n', 4),
        ('[\n {"code": "A"},\n]', 3),
        ('{"courses": []} trailing', 1),
        ('[\n\n  {"code": "A", "credits": NaN}, oops]', 3),
    ],
)
def test_json_syntax_errors_name_their_line(text: str, line: int) -> None:
    parsed = parse_courses(text, fmt="json")
    assert len(parsed.problems) == 1
    assert parsed.problems[0].line == line
    assert "not valid JSON" in parsed.problems[0].message


@pytest.mark.parametrize(
    "text",
    ['"just a string"', "42", '{"courses": 5}', '{"items": []}', "[]", '{"courses": []}'],
)
def test_json_of_the_wrong_shape(text: str) -> None:
    parsed = parse_courses(text, fmt="json")
    assert not parsed.ok and {p.line for p in parsed.problems} == {1}


# --- never an exception ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    for fmt in ("csv", "json"):
        for result in (parse_courses(text, fmt=fmt), parse_profile(text, fmt=fmt)):
            assert all(isinstance(p, RowProblem) and p.line >= 1 for p in result.problems)
            assert result.ok == (not result.problems)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for fmt in ("csv", "json"):
        for result in (parse_courses(data, fmt=fmt), parse_profile(data, fmt=fmt)):
            assert all(p.line >= 1 for p in result.problems)
            assert result.ok == (not result.problems)


cells = st.text(alphabet=st.sampled_from("aA1 .,;:-_/\"'\n\r\t中ไé\u0301\ufffd"), max_size=12)
column_names = st.sampled_from(
    ["code", "title:en", "title:zh-Hans", "credits", "credit_scheme", "level", "languages",
     "unit", "isced_f", "description:th", "title", "oops", "Code", ""]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(header=st.lists(column_names, min_size=1, max_size=8), data=st.data())
def test_arbitrary_csv_tables_never_raise(header: list[str], data: st.DataObject) -> None:
    rows = data.draw(st.lists(st.lists(cells, max_size=len(header) + 1), max_size=6))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    parsed = parse_courses(out.getvalue(), fmt="csv")
    assert parsed.ok == (not parsed.problems)
    assert parsed.rows == [] or parsed.ok
    for row in parsed.rows:
        validate_course(row.course)  # whatever parses is a valid course


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | cells,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(cells, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(
        st.dictionaries(st.sampled_from([*COURSE_FIELDS, "title", "x"]), json_values, max_size=6),
        max_size=5,
    )
)
def test_arbitrary_json_courses_never_raise(items: list[dict[str, object]]) -> None:
    parsed = parse_courses(json.dumps(items, ensure_ascii=False, indent=1), fmt="json")
    assert parsed.ok == (not parsed.problems)
    for row in parsed.rows:
        validate_course(row.course)


# --- the institution profile -----------------------------------------------------------------


def test_the_example_files_are_valid() -> None:
    ynu = parse_courses((EXAMPLES / "ynu-courses.csv").read_bytes(), fmt="csv")
    assert ynu.ok, ynu.problems
    assert len(ynu.rows) >= 10
    assert all(r.course.credits.scheme_id == "cn-credit" for r in ynu.rows)
    assert all({"zh-Hans", "en"} <= set(titles(r.course)) for r in ynu.rows)
    chula = parse_courses((EXAMPLES / "chula-courses.json").read_text(), fmt="json")
    assert chula.ok, chula.problems
    assert all({"th", "en"} <= set(titles(r.course)) for r in chula.rows)
    assert all(r.course.credits.scheme_id == "th-credit" for r in chula.rows)
    profile = parse_profile((EXAMPLES / "ynu-profile.json").read_text(), fmt="json")
    assert profile.ok and profile.profile is not None, profile.problems
    units = {u.code for u in profile.profile.units}
    assert {r.course.unit_code for r in ynu.rows} <= units
    again = parse_courses(
        (EXAMPLES / "ynu-courses.csv").read_text(),
        fmt="csv",
        known_units=units,
        default_scheme=profile.profile.credit_scheme_id,
    )
    assert again.ok


def test_a_json_profile() -> None:
    parsed = parse_profile((EXAMPLES / "ynu-profile.json").read_text(), fmt="json")
    profile = parsed.profile
    assert profile is not None
    assert profile.institution_id == "ynu.edu.cn"
    assert {t.lang: t.text for t in profile.names.texts} == {
        "zh-Hans": "云南大学",
        "en": "Yunnan University",
    }
    assert (profile.country, profile.website) == ("CN", "https://www.ynu.edu.cn")
    assert list(profile.languages_of_instruction) == ["zh-Hans", "en"]
    assert (profile.credit_scheme_id, profile.grade_scale_id) == ("cn-credit", "cn-100")
    department = next(u for u in profile.units if u.code == "SISE-CS")
    assert department.parent_code == "SISE"
    assert not profile.HasField("header")


def test_a_csv_profile() -> None:
    text = (
        "institution_id,name:th,name:en,country,website,languages_of_instruction,"
        "credit_scheme,grade_scale\n"
        "Chula.AC.th,จุฬาลงกรณ์มหาวิทยาลัย,Chulalongkorn University,th,https://www.chula.ac.th/en/,"
        "th;en,th-credit,th-4.0\n"
    )
    parsed = parse_profile(text, fmt="csv", institution_id="chula.ac.th")
    assert parsed.ok, parsed.problems
    assert parsed.profile is not None
    assert (parsed.profile.institution_id, parsed.profile.country) == ("chula.ac.th", "TH")
    assert parsed.profile.grade_scale_id == "th-4.0"


def test_profile_problems_have_lines() -> None:
    text = """{
  "institution_id": "ynu.edu.cn",
  "name": {"en": "Yunnan University"},
  "country": "China",
  "website": "http://www.ynu.edu.cn",
  "credit_scheme": "cn-credits",
  "colour": "green",
  "units": [
    {"code": "A", "name": {"en": "School A"}, "parent": "B"},
    {"code": "B", "name": {"en": "School B"}, "parent": "A"},
    {"code": "C", "name": {"en": "School C"}, "parent": "Z"},
    {"code": "C", "name": {}},
    {"code": "D", "name": {"en": "D"}, "parent": "D", "head": "x"}
  ]
}"""
    parsed = parse_profile(text, fmt="json", institution_id="ynu.edu.cn")
    assert parsed.profile is None
    assert [(p.line, p.field) for p in parsed.problems] == [
        (4, "country"),
        (5, "website"),
        (6, "credit_scheme"),
        (7, "colour"),
        (9, "units[0].parent"),
        (10, "units[1].parent"),
        (11, "units[2].code"),
        (11, "units[2].parent"),
        (12, "units[3].name"),
        (12, "units[3].code"),
        (13, "units[4].head"),
        (13, "units[4].parent"),
    ]
    assert "cycle" in parsed.problems[4].message


@pytest.mark.parametrize(
    ("text", "fmt", "field"),
    [
        ('{"institution_id": "chula.ac.th", "name": {"en": "x"}, "country": "TH"}', "json",
         "institution_id"),
        ('{"name": {"en": "x"}, "country": "CN"}', "json", "institution_id"),
        ('{"institution_id": "ynu.edu.cn", "country": "CN"}', "json", "name"),
        ('{"institution_id": "ynu.edu.cn", "name:en": "x", "country": "CN", "units": {}}',
         "json", "units"),
        ("institution_id,name:en,country,units\nynu.edu.cn,x,CN,\n", "csv", "units"),
        ("institution_id,name:en\nynu.edu.cn,x\n", "csv", "country"),
        ("institution_id,name:en,country\nynu.edu.cn,x,CN\nynu.edu.cn,y,CN\n", "csv", ""),
        ("institution_id,name:en,country\n", "csv", ""),
    ],
)  # fmt: skip
def test_profile_rules(text: str, fmt: str, field: str) -> None:
    parsed = parse_profile(text, fmt=fmt, institution_id="ynu.edu.cn")  # type: ignore[arg-type]
    assert [p.field for p in parsed.problems] == [field], parsed.problems
    assert parsed.profile is None


# --- names, signing, batches -----------------------------------------------------------------


def test_record_names() -> None:
    assert course_record_name("ynu.edu.cn", "CS101") == "institutions/ynu.edu.cn/courses/CS101"
    assert course_record_name("ynu.edu.cn", "CS 101/A") == (
        "institutions/ynu.edu.cn/courses/CS%20101%2FA"
    )
    assert course_record_name("ynu.edu.cn", "Cafe\u0301") == course_record_name(
        "ynu.edu.cn", "Caf\u00e9"
    )
    assert course_record_name("ynu.edu.cn", "a.b_c-d") == "institutions/ynu.edu.cn/courses/a.b_c-d"
    assert profile_record_name("chula.ac.th") == "institutions/chula.ac.th/profile"
    assert COURSES_PARENT("chula.ac.th") == "institutions/chula.ac.th/courses"
    for bad in ("", "..", " A", "A\n", "a%2F"):
        with pytest.raises(ProtocolError):
            course_record_name("ynu.edu.cn", bad)
    with pytest.raises(ProtocolError):
        COURSES_PARENT("YNU/../x")


def first_course() -> Course:
    return parse_courses(REGIONAL_CSV, fmt="csv").rows[0].course


def test_a_signed_course_verifies_and_parses_back_with_its_header() -> None:
    course = first_course()
    envelope = sign_course(
        course, network_id="sseaun-test", institution_id="ynu.edu.cn", version=3,
        issued_at=T0, signer=YNU,
    )  # fmt: skip
    verified = verify_envelope(envelope, {YNU.key_id: YNU.public_key}, {payload_types.COURSE})
    assert verified.payload_type == "application/vnd.sseaun.course.v1+protobuf"
    back = Course.FromString(verified.payload)
    header = back.header
    assert header.network_id == "sseaun-test"
    assert header.name == "institutions/ynu.edu.cn/courses/CS101"
    assert (header.version, header.issuer, list(header.parties)) == (3, "ynu.edu.cn", [])
    assert header.issued_at.ToDatetime(tzinfo=UTC) == T0
    assert not header.deleted
    expected = Course()
    expected.CopyFrom(course)
    expected.header.CopyFrom(header)
    assert back == expected
    assert not course.HasField("header")  # the input is left alone
    assert envelope.payload == back.SerializeToString(deterministic=True)
    validate_course(back)
    assert course_content_digest(back) == course_content_digest(course)


def test_a_signed_profile_verifies() -> None:
    parsed = parse_profile((EXAMPLES / "ynu-profile.json").read_text(), fmt="json")
    assert parsed.profile is not None
    envelope = sign_profile(
        parsed.profile, network_id="sseaun-test", institution_id="ynu.edu.cn", version=1,
        issued_at=T0, signer=YNU,
    )  # fmt: skip
    verified = verify_envelope(
        envelope, {YNU.key_id: YNU.public_key}, {payload_types.INSTITUTION_PROFILE}
    )
    back = InstitutionProfile.FromString(verified.payload)
    assert back.header.name == "institutions/ynu.edu.cn/profile"
    assert back.header.issuer == "ynu.edu.cn"
    validate_profile(back)
    with pytest.raises(ProtocolError):
        sign_profile(
            parsed.profile, network_id="sseaun-test", institution_id="chula.ac.th", version=1,
            issued_at=T0, signer=YNU,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c.ClearField("titles"), "titles"),
        (lambda c: setattr(c.credits, "value", "3.5e0"), "credits.value"),
        (lambda c: setattr(c, "code", "a/../b%"), "code"),
        (lambda c: c.languages.append("english"), "languages[2]"),
        (lambda c: setattr(c, "level", 9), "level"),
        (lambda c: c.titles.texts.append(LocalizedText(lang="EN", text="x")),
         "titles.texts[5].lang"),
    ],
)  # fmt: skip
def test_signing_refuses_a_course_that_breaks_the_rules(change: object, field: str) -> None:
    course = first_course()
    change(course)  # type: ignore[operator]
    with pytest.raises(ProtocolError) as info:
        sign_course(
            course, network_id="sseaun-test", institution_id="ynu.edu.cn", version=1,
            issued_at=T0, signer=YNU,
        )  # fmt: skip
    assert info.value.reason == Reason.MALFORMED
    assert [p.field for p in info.value.field_problems] == [field]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"version": 0}, "header.version"),
        ({"network_id": "Bad Network"}, "header.network_id"),
        ({"institution_id": "YNU"}, "header.issuer"),
        ({"issued_at": datetime(2026, 11, 1)}, "header.issued_at"),
    ],
)
def test_signing_refuses_a_bad_header(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {
        "network_id": "sseaun-test",
        "institution_id": "ynu.edu.cn",
        "version": 1,
        "issued_at": T0,
        "signer": YNU,
    }
    with pytest.raises(ProtocolError) as info:
        sign_course(first_course(), **{**args, **kwargs})  # type: ignore[arg-type]
    assert [p.field for p in info.value.field_problems] == [field]


def test_a_received_course_with_a_wrong_header_name_is_refused() -> None:
    envelope = sign_course(
        first_course(), network_id="sseaun-test", institution_id="ynu.edu.cn", version=1,
        issued_at=T0, signer=YNU,
    )  # fmt: skip
    course = Course.FromString(envelope.payload)
    course.header.name = "institutions/ynu.edu.cn/courses/OTHER"
    course.header.parties.append("chula.ac.th")
    with pytest.raises(ProtocolError) as info:
        validate_course(course)
    assert [p.field for p in info.value.field_problems] == ["header.name", "header.parties"]


def test_hand_built_messages_are_checked() -> None:
    course = Course(
        code="X1",
        titles=MultilingualText(texts=[LocalizedText(lang="en", text="Ok")]),
        credits=CreditValue(scheme_id="ects", value="5"),
    )
    validate_course(course, known_schemes=DEFAULT_SCHEMES)
    with pytest.raises(ProtocolError):
        validate_course(course, known_schemes={"cn-credit"})
    with pytest.raises(ProtocolError) as info:
        validate_profile(InstitutionProfile(institution_id="ynu.edu.cn", country="cn"))
    assert [p.field for p in info.value.field_problems] == ["names", "country"]


def rows_of(n: int) -> list[CourseRow]:
    return [CourseRow(i + 2, Course(code=f"C{i}")) for i in range(n)]


def test_batches_keep_file_order() -> None:
    rows = rows_of(7)
    cut = batches(rows, 3)
    assert [[r.line for r in b] for b in cut] == [[2, 3, 4], [5, 6, 7], [8]]
    assert batches([], 3) == []
    assert len(batches(rows_of(250))) == 3
    with pytest.raises(ValueError, match="size"):
        batches(rows, 0)


def test_batch_ids_are_stable_and_distinct() -> None:
    digest = file_digest(REGIONAL_CSV)
    assert digest == file_digest(REGIONAL_CSV.encode())
    first = batch_id("ynu.edu.cn", digest, 0)
    assert first == batch_id("ynu.edu.cn", digest, 0)  # a re-run finds the same batch
    assert first.startswith("batch-") and len(first) == 38
    others = {
        batch_id("ynu.edu.cn", digest, 1),
        batch_id("chula.ac.th", digest, 0),
        batch_id("ynu.edu.cn", file_digest(REGIONAL_CSV + "\n"), 0),
        batch_id("ynu.edu.cn", digest, 0, size=50),
    }
    assert first not in others and len(others) == 4


def test_guess_format() -> None:
    assert guess_format("courses.CSV") == "csv"
    assert guess_format("/tmp/x.json") == "json"
    assert guess_format("courses.xlsx") is None
