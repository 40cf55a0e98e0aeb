"""Credit schemes and grade scales of the region, as data (DESIGN §7).

Every figure comes from shared/reference/regional_domain.md (§2.2, the credit table; §3, the grading
table) and each entry names its sources there ([Rn], listed with their addresses). Rules applied
to that data, written down once here and in docs/conversion.md:

- Where the reference gives a range of credits per full-time year, the scheme's working figure is
  the midpoint of the range, unless the reference names a typical figure itself (China ~37.5,
  Indonesia 36); the published range is kept beside it.
- Hours per credit are kept as the published range (lecture to laboratory for contact schemes).
- Figures the reference marks UNVERIFIED are kept and flagged in the entry's note; systems it did
  not research (Nepal, Singapore) are listed without figures, so only an agreement override can
  convert them.

Nothing here reads a file: the tables are Python values, frozen. ``to_proto`` gives the wire
messages (sseaun.v1.CreditScheme, sseaun.v1.GradeScale) for a manifest.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from types import MappingProxyType

from sseaun.v1.types_pb2 import (
    CreditBasis,
    CreditScheme,
    GradeDirection,
    GradeScale,
    GradeSymbol,
    LocalizedText,
    MultilingualText,
)

from ._errors import FieldProblem, ProtocolError, Reason

__all__ = [
    "CONTACT",
    "CREDIT_SCHEMES",
    "GRADE_SCALES",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "REFERENCES",
    "UNSPECIFIED",
    "WORKLOAD",
    "CreditSchemeSpec",
    "GradeScaleSpec",
    "GradeSymbolSpec",
    "SymbolKind",
    "credit_scheme",
    "grade_scale",
]

CONTACT = CreditBasis.CREDIT_BASIS_CONTACT_HOURS
WORKLOAD = CreditBasis.CREDIT_BASIS_WORKLOAD
UNSPECIFIED = CreditBasis.CREDIT_BASIS_UNSPECIFIED
HIGHER_IS_BETTER = GradeDirection.GRADE_DIRECTION_HIGHER_IS_BETTER
LOWER_IS_BETTER = GradeDirection.GRADE_DIRECTION_LOWER_IS_BETTER

_REF = "shared/reference/regional_domain.md"

_SOURCES: dict[str, tuple[str, str]] = {
    "R9": (
        'AZVO glossary "60 ECTS credits"',
        "https://www.azvo.hr/en/component/seoglossary/4-basic-recognition-terms/143-60-ects-credits",
    ),
    "R10": (
        "ECTS explainer (relative measure)",
        "http://korpus.uib.no/humfak/AcoHum/4/wg2/ECTS1.txt",
    ),
    "R11": (
        "AUN-ACTS",
        "https://www.aunsec.org/discover-aun/thematic-networks/aun-acts",
    ),
    "R12": (
        "ACTS grading scale",
        "https://acts.ui.ac.id/about-aun-acts/grading-scale.html",
    ),
    "R13": (
        "UMAP UCTS (60-point)",
        "http://umap.org/ucts/",
    ),
    "R14": (
        "UMAP Credit Transfer Scheme (38–48 h)",
        "https://umap.org/credit-transfer-scheme/",
    ),
    "R15": (
        "UCTS example and grading",
        "https://en.wikipedia.org/wiki/UMAP_Credit_Transfer_Scheme",
    ),
    "R17": (
        "NESO China credits research",
        "http://www.nesochina.org/dutch-organizations/services/research-on-credits-transfer-system",
    ),
    "R18": (
        "Asia Exchange, China conversion",
        "https://www.asiaexchange.org/information/credit-conversion/china/",
    ),
    "R19": (
        "UGC CCFUP quote",
        "https://rpriedu.blogspot.com/2024/03/credit-course-meaning.html",
    ),
    "R20": (
        "Gauhati University FYUGP",
        "https://web.gauhati.ac.in/nep/course-ug/credit-framework",
    ),
    "R21": (
        "NCrF report (UGC, Apr 2023)",
        "https://scribd.com/document/671587274/9028476-Report-of-National-Credit-Framework-1",
    ),
    "R22": (
        "MQA SLT explainer",
        "https://calculator6.snowdaycalculatornow.com/mqa-credit-hours-calculation/",
    ),
    "R23": (
        "ASEM compendium, Malaysia",
        "https://asem-education.org/compendiums/malaysia/",
    ),
    "R24": (
        "IPB academic guide",
        "https://panduan.ipb.ac.id/?p=9261",
    ),
    "R25": (
        "UNJ workload and credits",
        "https://fmipa.unj.ac.id/pbiologi/kurikulum-dan-silabus/workload-and-credits/",
    ),
    "R26": (
        "ITS courses in English",
        "https://its.ac.id/international/experiencing-its/prospective-student/academic/courses-in-english",
    ),
    "R27": (
        "Thai university handbook (credit definition)",
        "https://online.flipbuilder.com/icsg/qtje/files/basic-html/page124.html",
    ),
    "R28": (
        "MUA Thai HE system",
        "http://inter.mua.go.th/thai-he-system/",
    ),
    "R29": (
        "Vietnam Circular 17/2021 Art. 7",
        "https://lawnet.vn/en/laws/sinh-vien-dai-hoc-phai-hoan-thanh-bao-nhieu-tin-chi-cau-truc-va-noi-dung-chuong-trinh-dao-tao-trinh-530711-59112.html",
    ),
    "R30": (
        "UP Diliman credit unit",
        "https://upd.edu.ph/credit-unit/",
    ),
    "R31": (
        "USeP credit unit",
        "http://www.usep.edu.ph/oasr/credit-unit/",
    ),
    "R32": (
        "GSC academic load",
        "http://www1.gsc.edu.ph/academic-load/",
    ),
    "R33": (
        "HEC semester guidelines",
        "https://www.scribd.com/presentation/274170366/HEC-Policy-Semester-System-Guidelines",
    ),
    "R34": (
        "LEADS scheme of studies",
        "https://law.leads.edu.pk/scheme-of-studies/",
    ),
    "R35": (
        "Dhaka University programme",
        "https://du.ac.bd/index.php/programDetails/UPS/340",
    ),
    "R36": (
        "UGC Sri Lanka SLQF FAQ",
        "https://www.eugc.ac.lk/qac/slqf-add-faq.html",
    ),
    "R37": (
        "UCS Dawei credit system",
        "http://www.ucsdawei.edu.mm/index.php/academic-credit-system/",
    ),
    "R38": (
        "ACC decision on credit system (Cambodia)",
        "https://scribd.com/document/692398259/Decision-on-Implementation-of-credit-system-and-credit-transfer-into-the-curriculum-Eng",
    ),
    "R39": (
        "University of Cambodia catalogue",
        "http://www.uc.edu.kh/Catalog/06.ug.htm",
    ),
    "R40": (
        "NUOL case study",
        "https://docslib.org/doc/6052419/of-the-national-university-of-laos-nuol",
    ),
    "R41": (
        "Academic grading in the PRC",
        "https://en.wikipedia.org/wiki/Academic_grading_in_the_People's_Republic_of_China",
    ),
    "R42": (
        "China grading note",
        "http://t.zoukankan.com/easoncheng-p-2781965.html",
    ),
    "R43": (
        "PCCOER grade points",
        "https://www.pccoer.com/grading-system-and-grade-points.php",
    ),
    "R44": (
        "GDC Jourian UGC 10-point",
        "https://gdcjourian.co.in/grades.php",
    ),
    "R45": (
        "Universal College grading",
        "https://ghatkopar.universalcollege.edu.in/examinations-results/performance-grading/",
    ),
    "R46": (
        "Scholaro Pakistan",
        "https://www.scholaro.com/db/Countries/Pakistan/Grading-System",
    ),
    "R47": (
        "SBKWU grading",
        "https://pishin.sbkwu.edu.pk/department-of-examination",
    ),
    "R48": (
        "CIU, UGC uniform grading",
        "https://ciu.ac.bd/grading-policy",
    ),
    "R49": (
        "Academic grading in Bangladesh",
        "https://wikimili.com/en/Academic_grading_in_Bangladesh",
    ),
    "R54": (
        "Payap University grading",
        "https://iit.payap.ac.th/?page_id=1042",
    ),
    "R55": (
        "Study in Thailand, RU-IIS",
        "https://studyinthailand.org/study-abroad-thailand-university/gpa-grading-examination.html",
    ),
    "R56": (
        "Vietnam Circular 08/2021 Art. 9",
        "https://lawnet.vn/thong-tin-phap-luat/en/giao-duc/regulations-on-assessment-and-calculation-of-grades-of-units-of-study-in-vietnam-106600.html",
    ),
    "R57": (
        "Vietnam Circular 08/2021 Art. 10",
        "https://lawnet.vn/thong-tin-phap-luat/en/giao-duc/regulations-on-recognition-of-study-results-and-credit-transfer-in-vietnam-107662.html",
    ),
    "R58": (
        "Vietnam classification",
        "https://lawnet.vn/giao-duc/en/how-many-points-does-a-student-in-vietnam-need-to-graduate-with-good-grade-5698.html",
    ),
    "R61": (
        "UM Rules & Regulations",
        "http://ebook.um.edu.my/BA/University_Malaya_Rules_and_Regulations/Ebook_BA_2018/files/basic-html/page40.html",
    ),
    "R62": (
        "OUM grading scheme",
        "https://id.scribd.com/doc/146488526/Oum-Grading-Scheme",
    ),
    "R64": (
        "Nuffic Philippines grading",
        "https://www.nuffic.nl/en/education-systems/philippines/grading-systems",
    ),
    "R65": (
        "UPLB grading",
        "https://adsc.ca.uplb.edu.ph/current-students-grading-system",
    ),
    "R68": (
        "Norton University regulation",
        "https://cdn.norton-u.com/Internal-Regulation-2024/files/basic-html/page37.html",
    ),
    "R70": (
        "ULB ECTS grading scale",
        "http://www.ulb.ac.be/enseignements/presentation/en/presentation-en-translation.html",
    ),
    "R71": (
        "SGroup EGRACONS",
        "http://sgroup.be/project/egracons",
    ),
    "R72": (
        'EGRACONS "What is"',
        "http://egracons.eu/page/what-egracons",
    ),
}

#: The sources of regional_domain.md that the tables cite, by their number there.
REFERENCES: Mapping[str, str] = MappingProxyType(
    {ref: f"{title} — {url}" for ref, (title, url) in _SOURCES.items()}
)


def _cite(section: str, *refs: str) -> str:
    """A source string: the reference file and section, then each cited source in full."""
    return "; ".join([f"{_REF} {section}", *(f"[{r}] {REFERENCES[r]}" for r in refs)])


def plain(value: Decimal) -> str:
    """A Decimal as a plain decimal string: no exponent, no trailing zeros ("7.5", "60", "0")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _d(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _range(low: str, high: str) -> tuple[Decimal, Decimal]:
    return Decimal(low), Decimal(high)


def _names(name: str, local: tuple[str, str] | None) -> MultilingualText:
    texts = [LocalizedText(lang="en", text=name)]
    if local is not None:
        texts.append(LocalizedText(lang=local[0], text=local[1]))
    return MultilingualText(texts=texts)


# --- credit schemes --------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditSchemeSpec:
    """A credit system: its size as a share of a full-time year and as hours, with sources.

    Attributes:
        id: the stable scheme ID (CreditScheme.id, CreditValue.scheme_id).
        name: English name; local_name is (BCP 47 tag, name) in the system's own language.
        basis: what a credit counts, CONTACT (teaching hours) or WORKLOAD (notional learning time),
            or UNSPECIFIED where the source does not say.
        credits_per_year: the working figure of credits in one full-time year (see the module
            docstring for how it is chosen from a range); None when no source gives one.
        credits_per_year_range: the range as published, when the source gives one.
        hours_per_credit: (min, max) hours one credit stands for; None when not published.
        countries: ISO 3166-1 alpha-2 codes; empty for international schemes.
        step: converted values in this scheme are rounded to a multiple of step.
        source: the reference section and the sources it cites for these figures.
        note: what the figures mean, and what is derived or unverified.
    """

    id: str
    name: str
    basis: CreditBasis.ValueType
    credits_per_year: Decimal | None
    hours_per_credit: tuple[Decimal, Decimal] | None
    countries: tuple[str, ...]
    source: str
    note: str = ""
    credits_per_year_range: tuple[Decimal, Decimal] | None = None
    step: Decimal = Decimal("0.1")
    local_name: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.credits_per_year is not None and not self.credits_per_year > 0:
            problems.append("credits_per_year must be positive")
        if self.hours_per_credit is not None:
            low, high = self.hours_per_credit
            if not 0 < low <= high:
                problems.append("hours_per_credit must be 0 < min <= max")
        if not self.step > 0:
            problems.append("step must be positive")
        if problems:
            raise ValueError(f"credit scheme {self.id!r}: " + "; ".join(problems))

    @property
    def hours_midpoint(self) -> Decimal | None:
        """The middle of the hours-per-credit range, the figure the hours cross-check uses."""
        if self.hours_per_credit is None:
            return None
        low, high = self.hours_per_credit
        return (low + high) / 2

    def to_proto(self) -> CreditScheme:
        """The scheme as the wire message sseaun.v1.CreditScheme (sources and notes stay here)."""
        hours = self.hours_per_credit
        return CreditScheme(
            id=self.id,
            name=_names(self.name, self.local_name),
            basis=self.basis,
            credits_per_year="" if self.credits_per_year is None else plain(self.credits_per_year),
            hours_per_credit_min="" if hours is None else plain(hours[0]),
            hours_per_credit_max="" if hours is None else plain(hours[1]),
            countries=list(self.countries),
        )

    @classmethod
    def from_proto(
        cls, message: CreditScheme, *, source: str, step: Decimal = Decimal("0.1")
    ) -> CreditSchemeSpec:
        """A scheme from a wire message (e.g. one a network manifest lists).

        Args:
            message: the CreditScheme; empty decimal fields mean "not published".
            source: where the message came from, e.g. "network manifest v12".
            step: the rounding step of values converted into this scheme.

        Raises:
            ProtocolError: MALFORMED when a figure is not a positive decimal string.
        """
        problems: list[FieldProblem] = []

        def number(name: str, text: str) -> Decimal | None:
            if not text:
                return None
            value = decimal_or_none(text)
            if value is None or not value > 0:
                problems.append(FieldProblem(name, "must be a positive decimal string"))
                return None
            return value

        per_year = number("credits_per_year", message.credits_per_year)
        low = number("hours_per_credit_min", message.hours_per_credit_min)
        high = number("hours_per_credit_max", message.hours_per_credit_max)
        if not message.id:
            problems.append(FieldProblem("id", "required"))
        if (low is None) != (high is None) or (low is not None and high is not None and low > high):
            problems.append(FieldProblem("hours_per_credit_max", "give both, with min <= max"))
        if problems:
            raise ProtocolError(
                Reason.MALFORMED, "credit scheme has bad figures", field_problems=problems
            )
        english = [t.text for t in message.name.texts if t.lang.lower().split("-")[0] == "en"]
        others = [
            (t.lang, t.text) for t in message.name.texts if t.lang.lower().split("-")[0] != "en"
        ]
        return cls(
            id=message.id,
            name=english[0] if english else message.id,
            local_name=others[0] if others else None,
            basis=message.basis,
            credits_per_year=per_year,
            hours_per_credit=None if low is None or high is None else (low, high),
            countries=tuple(message.countries),
            source=source,
            step=step,
        )


_DIGITS = frozenset("0123456789")


def decimal_or_none(text: str) -> Decimal | None:
    """The Decimal a wire decimal string stands for, or None if it is not one (ADR 0005).

    The form is ASCII digits with an optional "." and fraction digits: no sign, no exponent, no
    spaces, at most 32 characters.
    """
    if not 0 < len(text) <= 32:
        return None
    whole, dot, fraction = text.partition(".")
    if not whole or not set(whole) <= _DIGITS:
        return None
    if dot and (not fraction or not set(fraction) <= _DIGITS):
        return None
    return Decimal(text)


def _scheme(
    scheme_id: str,
    name: str,
    basis: CreditBasis.ValueType,
    *,
    per_year: str | None,
    hours: tuple[str, str] | None,
    countries: Iterable[str],
    source: str,
    note: str,
    per_year_range: tuple[str, str] | None = None,
    step: str = "0.1",
    local: tuple[str, str] | None = None,
) -> CreditSchemeSpec:
    return CreditSchemeSpec(
        id=scheme_id,
        name=name,
        basis=basis,
        credits_per_year=_d(per_year),
        credits_per_year_range=None if per_year_range is None else _range(*per_year_range),
        hours_per_credit=None if hours is None else _range(*hours),
        countries=tuple(countries),
        source=source,
        note=note,
        step=Decimal(step),
        local_name=local,
    )


_CREDIT_SCHEMES = (
    _scheme(
        "ects",
        "European Credit Transfer and Accumulation System (ECTS)",
        WORKLOAD,
        per_year="60",
        hours=("25", "30"),
        countries=(),
        step="0.5",
        source=_cite("§2.1, §2.2", "R9", "R10"),
        note="60 credits are one full-time year of 1,500–1,800 hours; ECTS credits are a relative "
        "measure, the share of a year's workload a unit represents.",
    ),
    _scheme(
        "ucts-umap",
        "UMAP Credit Transfer Scheme (UCTS), current definition",
        WORKLOAD,
        per_year="40",
        hours=("38", "48"),
        countries=(),
        step="0.5",
        source=_cite("§2.1, §2.2", "R14"),
        note="1 UCTS = 38–48 hours of engagement (13–16 contact hours) = 1 Asian/US credit = 1.5 "
        "ECTS. UMAP states no yearly total: 40 is derived from the stated 1.5 ECTS (60 / 1.5). "
        "Conflicts with the older definition, ucts-umap-60.",
    ),
    _scheme(
        "ucts-umap-60",
        "UMAP Credit Transfer Scheme (UCTS), older definition on the ECTS 60-point scale",
        UNSPECIFIED,
        per_year="60",
        hours=None,
        countries=(),
        step="0.5",
        source=_cite("§2.1", "R13", "R15"),
        note="60 per year, 30 per semester; converted through the fraction of the year (host 4 "
        "credits × 30/16 = 7.5 UCTS). No hours are defined. Conflicts with ucts-umap.",
    ),
    _scheme(
        "aun-acts",
        "ASEAN University Network Credit Transfer System (AUN-ACTS)",
        UNSPECIFIED,
        per_year=None,
        hours=None,
        countries=(),
        source=_cite("§2.1", "R11", "R12"),
        note="Not a credit unit: ACTS is grading scales, a course list and an application system, "
        "and keeps the institutions' own credit systems. Convert the institution's own credits.",
    ),
    _scheme(
        "cn-credit",
        "China credit (xuefen)",
        CONTACT,
        per_year="37.5",
        hours=("14", "24"),
        countries=("CN",),
        local=("zh-Hans", "学分"),
        source=_cite("§2.2", "R17", "R18"),
        note="~37.5 per year (e.g. 150 over 4 years at Guangzhou University, coefficient 1.6 "
        "ECTS). 14–24 class hours per credit (PKU/Tianjin 15, Fudan 18); Chinese 'study hours' "
        "often mean contact hours only.",
    ),
    _scheme(
        "in-cbcs",
        "India UGC CCFUP / CBCS credit",
        CONTACT,
        per_year="42",
        per_year_range=("40", "44"),
        hours=("15", "30"),
        countries=("IN",),
        source=_cite("§2.2", "R19", "R20"),
        note="40–44 per year (≤22 per semester; 120–132 over 3 years, 160–176 over 4): working "
        "figure 42, the midpoint. 1 h lecture or tutorial per week (15 h per 15-week semester); "
        "practicum 2 h per week (30 h).",
    ),
    _scheme(
        "in-ncrf",
        "India National Credit Framework (NCrF)",
        WORKLOAD,
        per_year="40",
        hours=("30", "30"),
        countries=("IN",),
        source=_cite("§2.2", "R21"),
        note="UNVERIFIED in the reference: the report exists but its figures (40 per year, 1,200 "
        "notional hours, 30 notional hours per credit) are not confirmed.",
    ),
    _scheme(
        "my-mqa",
        "Malaysia MQF/MQA credit",
        WORKLOAD,
        per_year="35",
        per_year_range=("30", "40"),
        hours=("40", "40"),
        countries=("MY",),
        source=_cite("§2.2", "R22", "R23"),
        note="~30–40 per year (Bachelor ≥120 over 3–4 years): working figure 35, the midpoint. "
        "1 credit = 40 hours of student learning time (SLT).",
    ),
    _scheme(
        "id-sks",
        "Indonesia semester credit unit (SKS)",
        WORKLOAD,
        per_year="36",
        per_year_range=("36", "48"),
        hours=("45", "45.33"),
        countries=("ID",),
        local=("id", "satuan kredit semester"),
        source=_cite("§2.2", "R24", "R25", "R26"),
        note="36 per year (144 sks over 8 semesters; 18–24 per semester). 170 minutes per week × "
        "16 weeks ≈ 45.33 h (IPB: 45 h). Universities quote 1.5 ECTS (UNJ) or 1.7 ECTS (ITS) per "
        "sks: those are institution rules, for an override.",
    ),
    _scheme(
        "th-credit",
        "Thailand credit (nuai kit)",
        CONTACT,
        per_year="30",
        hours=("15", "45"),
        countries=("TH",),
        local=("th", "หน่วยกิต"),
        source=_cite("§2.2", "R27", "R28"),
        note="~30 per year (Bachelor ≥120 over 4 years). Lecture 15 h per semester; lab 30–45 h; "
        "practice 45 h.",
    ),
    _scheme(
        "vn-credit",
        "Vietnam credit (tín chỉ)",
        WORKLOAD,
        per_year="30",
        hours=("50", "50"),
        countries=("VN",),
        local=("vi", "tín chỉ"),
        source=_cite("§2.2", "R29"),
        note="~30 per year (Bachelor ≥120). 50 h of study (≥15 teaching hours of 50 minutes, or "
        "30 h practice). UEH has its own VN↔ECTS regulation (2023): an institution rule.",
    ),
    _scheme(
        "ph-unit",
        "Philippines academic unit",
        CONTACT,
        per_year="42",
        per_year_range=("36", "48"),
        hours=("16", "54"),
        countries=("PH",),
        source=_cite("§2.2", "R30", "R31", "R32"),
        note="36–48 per year (up to 24 per semester): working figure 42, the midpoint. ≥16 h (UP) "
        "or ≥18 h (USeP) of lecture per semester; lab 32–54 h.",
    ),
    _scheme(
        "pk-hec",
        "Pakistan HEC credit hour",
        CONTACT,
        per_year="32.5",
        per_year_range=("31", "34"),
        hours=("16", "54"),
        countries=("PK",),
        source=_cite("§2.2", "R33", "R34"),
        note="~31–34 per year (124–136 over 8 semesters; 15–18 per semester): working figure "
        "32.5, the midpoint. 1 h (50 min) of theory per week for 16–18 weeks; lab 2–3 h per week.",
    ),
    _scheme(
        "bd-ugc",
        "Bangladesh (UGC) credit",
        CONTACT,
        per_year="30",
        hours=("15", "15"),
        countries=("BD",),
        source=_cite("§2.2", "R35"),
        note="~30 per year (e.g. Dhaka University BA Honours 120 over 4 years); 15 teaching hours.",
    ),
    _scheme(
        "lk-slqf",
        "Sri Lanka Qualifications Framework (SLQF) credit",
        WORKLOAD,
        per_year="30",
        hours=("50", "50"),
        countries=("LK",),
        source=_cite("§2.2", "R36"),
        note="30 per year of 1,500 notional hours; 50 notional hours per credit is derived "
        "(1,500 / 30).",
    ),
    _scheme(
        "np-credit",
        "Nepal credit hour",
        UNSPECIFIED,
        per_year=None,
        hours=None,
        countries=("NP",),
        source=f"{_REF} §2.2 and §8: not researched (UNVERIFIED)",
        note="The reference gives no figures: convert with an agreement override.",
    ),
    _scheme(
        "sg-nus-mc",
        "Singapore NUS modular credit (MC)",
        UNSPECIFIED,
        per_year=None,
        hours=None,
        countries=("SG",),
        source=f"{_REF} §2.2 and §8: not researched (UNVERIFIED)",
        note="The reference gives no figures: convert with an agreement override.",
    ),
    _scheme(
        "mm-credit",
        "Myanmar academic credit unit",
        CONTACT,
        per_year="34",
        per_year_range=("32", "36"),
        hours=("14", "28"),
        countries=("MM",),
        source=_cite("§2.2", "R37"),
        note="~32–36 per year (16–18 per semester, UCS Dawei): working figure 34, the midpoint. "
        "1 lecture hour per week × 14 weeks, or 2 h of tutorial or lab.",
    ),
    _scheme(
        "kh-credit",
        "Cambodia credit",
        CONTACT,
        per_year="32.5",
        per_year_range=("31", "34"),
        hours=None,
        countries=("KH",),
        source=_cite("§2.2", "R38", "R39"),
        note="~31–34 per year (University of Cambodia Bachelor 124–136): working figure 32.5, the "
        "midpoint. Semesters of ≥15 weeks (ACC decision); hours per credit not published.",
    ),
    _scheme(
        "la-credit",
        "Laos credit",
        CONTACT,
        per_year="35",
        per_year_range=("30", "40"),
        hours=("16", "96"),
        countries=("LA",),
        source=_cite("§2.2", "R40"),
        note="Diploma 90–120 over 3 years (30–40 per year, the only yearly figure published): "
        "working figure 35, the midpoint. ≥16 lecture hours, or 32–48 h tutorial, or 48–96 h "
        "practical.",
    ),
)

#: Every credit scheme of the regional table, by ID.
CREDIT_SCHEMES: Mapping[str, CreditSchemeSpec] = MappingProxyType(
    {scheme.id: scheme for scheme in _CREDIT_SCHEMES}
)


# --- grade scales ----------------------------------------------------------------------------


class SymbolKind(enum.StrEnum):
    """What a grade symbol records."""

    #: A passing grade with a place on the scale (a grade point, a band of marks, or a rank).
    GRADED = "graded"
    #: A pass with no grade (S, P, 合格, credit for prior learning).
    UNGRADED = "ungraded"
    #: A fail (graded or not), including conditional grades not yet passed.
    FAIL = "fail"
    #: No result to convert (withdrawn, incomplete, dropped).
    NO_RESULT = "no-result"


@dataclass(frozen=True)
class GradeSymbolSpec:
    """One symbol of a grade scale.

    Attributes:
        symbol: the symbol as printed ("A-", "优秀", "5.0").
        kind: what it records.
        numeric: its value on the scale (a grade point), when it has one.
        band: (low, high) on the scale's own axis for a symbol that stands for a band of values
            (Chinese 良好 = 80 up to but excluding 90); the top band includes its high end.
        marks: the percentage marks it stands for, as published ("80–100"); informational.
        description: English meaning.
    """

    symbol: str
    kind: SymbolKind
    numeric: Decimal | None = None
    band: tuple[Decimal, Decimal] | None = None
    marks: str = ""
    description: str = ""

    @property
    def passing(self) -> bool:
        """Whether the symbol is a pass (graded or not)."""
        return self.kind in (SymbolKind.GRADED, SymbolKind.UNGRADED)

    @property
    def value(self) -> Decimal | None:
        """Where the symbol sits on the scale's axis: its numeric, or the middle of its band."""
        if self.numeric is not None:
            return self.numeric
        if self.band is not None:
            return (self.band[0] + self.band[1]) / 2
        return None


@dataclass(frozen=True)
class GradeScaleSpec:
    """A grading scale: direction, bounds, pass mark and symbols (best first), with sources.

    Attributes:
        id: the stable scale ID (GradeScale.id, Grade.scale_id).
        direction: HIGHER_IS_BETTER or LOWER_IS_BETTER (the Philippines).
        minimum, maximum, pass_mark: the numeric bounds and lowest passing value; None on an
            ordinal scale whose symbols have no numbers (ECTS A–F).
        symbols: best first; the order of passing symbols is the order of quality.
        continuous: any value from minimum to maximum is a grade as well (marks, averages).
        step: the grid that numeric grades suggested on a continuous scale are rounded to.
        min_decimals: fraction digits a suggested numeric grade shows at least ("2.0").
        fail_symbol: the symbol a failing grade converts to.
        ungraded_symbol: the symbol an ungraded pass converts to, if the scale has one.
        shares: the fixed percentage of passing grades each passing symbol was defined to hold
            (the old ECTS A–E scale); it serves as the scale's built-in grading table.
        source, note: as for credit schemes.
    """

    id: str
    name: str
    direction: GradeDirection.ValueType
    minimum: Decimal | None
    maximum: Decimal | None
    pass_mark: Decimal | None
    symbols: tuple[GradeSymbolSpec, ...]
    countries: tuple[str, ...]
    source: str
    fail_symbol: str
    note: str = ""
    ungraded_symbol: str | None = None
    continuous: bool = False
    step: Decimal | None = None
    min_decimals: int = 0
    shares: tuple[tuple[str, Decimal], ...] = ()
    local_name: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError(f"grade scale {self.id!r}: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems: list[str] = []
        names = [s.symbol for s in self.symbols]
        if len(set(names)) != len(names):
            problems.append("symbols must be unique")
        if self.direction not in (HIGHER_IS_BETTER, LOWER_IS_BETTER):
            problems.append("direction must be HIGHER or LOWER_IS_BETTER")
        fail = self.symbol(self.fail_symbol)
        if fail is None or fail.kind is not SymbolKind.FAIL:
            problems.append("fail_symbol must name a FAIL symbol")
        if self.ungraded_symbol is not None:
            ungraded = self.symbol(self.ungraded_symbol)
            if ungraded is None or ungraded.kind is not SymbolKind.UNGRADED:
                problems.append("ungraded_symbol must name an UNGRADED symbol")
        graded = [s for s in self.symbols if s.kind is SymbolKind.GRADED]
        if not graded and not self.continuous:
            problems.append("a scale needs passing grades")
        if self.ordinal:
            if any(s.value is not None for s in self.symbols) or self.continuous:
                problems.append("an ordinal scale has no numbers")
        else:
            if self.minimum is None or self.maximum is None or self.pass_mark is None:
                return [*problems, "a numeric scale needs minimum, maximum and pass_mark"]
            if not self.minimum <= self.pass_mark <= self.maximum:
                problems.append("pass_mark must lie within minimum..maximum")
            for s in self.symbols:
                if s.value is None:
                    if s.kind is SymbolKind.GRADED:
                        problems.append(f"passing {s.symbol} needs a numeric value or band")
                    continue
                inside = self.minimum <= s.value <= self.maximum
                if not inside or (s.kind is SymbolKind.GRADED) != self.at_or_better(s.value):
                    problems.append(f"{s.symbol} lies on the wrong side of the pass mark")
            values = [s.value for s in graded if s.value is not None]
            if any(not self.at_or_better(a, b) for a, b in pairwise(values)):
                problems.append("passing symbols must be listed best first")
        if self.continuous:
            if self.step is None or not self.step > 0:
                problems.append("a continuous scale needs a positive step")
            else:
                for bound in (self.minimum, self.maximum, self.pass_mark):
                    if bound is not None and bound % self.step != 0:
                        problems.append("minimum, maximum and pass_mark must be on the step grid")
        if self.shares:
            if [name for name, _ in self.shares] != [s.symbol for s in graded]:
                problems.append("shares must list every passing symbol, best first")
            if sum((share for _, share in self.shares), Decimal(0)) != 100:
                problems.append("shares must add up to 100")
        return problems

    @property
    def ordinal(self) -> bool:
        """True for a scale of ranked symbols without numbers (ECTS A–F)."""
        return self.pass_mark is None

    @property
    def best(self) -> Decimal | None:
        """The best value of a numeric scale: its maximum, or its minimum if lower is better."""
        return self.maximum if self.direction == HIGHER_IS_BETTER else self.minimum

    @property
    def worst(self) -> Decimal | None:
        """The worst value of a numeric scale."""
        return self.minimum if self.direction == HIGHER_IS_BETTER else self.maximum

    def at_or_better(self, value: Decimal, than: Decimal | None = None) -> bool:
        """Whether value is at least as good as than (default: the pass mark), by direction."""
        other = self.pass_mark if than is None else than
        if other is None:
            raise ValueError(f"{self.id} is ordinal: values cannot be compared")
        return value >= other if self.direction == HIGHER_IS_BETTER else value <= other

    def symbol(self, symbol: str) -> GradeSymbolSpec | None:
        """The symbol spelt exactly so, or None."""
        for spec in self.symbols:
            if spec.symbol == symbol:
                return spec
        return None

    def to_proto(self) -> GradeScale:
        """The scale as the wire message sseaun.v1.GradeScale (sources, bands and steps stay here).

        A band or mark range is written into the symbol's English description.
        """

        def number(value: Decimal | None) -> str:
            return "" if value is None else plain(value)

        symbols = []
        for s in self.symbols:
            text = "; ".join(
                part for part in (s.description, s.marks and f"marks {s.marks}") if part
            )
            symbols.append(
                GradeSymbol(
                    symbol=s.symbol,
                    numeric=number(s.numeric),
                    passing=s.passing,
                    description=MultilingualText(
                        texts=[LocalizedText(lang="en", text=text)] if text else []
                    ),
                )
            )
        return GradeScale(
            id=self.id,
            name=_names(self.name, self.local_name),
            direction=self.direction,
            minimum=number(self.minimum),
            maximum=number(self.maximum),
            pass_mark=number(self.pass_mark),
            symbols=symbols,
            countries=list(self.countries),
        )


def _sym(
    symbol: str,
    kind: SymbolKind,
    numeric: str | None = None,
    *,
    band: tuple[str, str] | None = None,
    marks: str = "",
    description: str = "",
) -> GradeSymbolSpec:
    return GradeSymbolSpec(
        symbol=unicodedata.normalize("NFC", symbol),
        kind=kind,
        numeric=_d(numeric),
        band=None if band is None else _range(*band),
        marks=marks,
        description=description,
    )


_P, _U, _F, _N = (
    SymbolKind.GRADED,
    SymbolKind.UNGRADED,
    SymbolKind.FAIL,
    SymbolKind.NO_RESULT,
)

_GRADE_SCALES = (
    GradeScaleSpec(
        id="cn-100",
        name="China 100-point marks",
        local_name=("zh-Hans", "百分制"),
        direction=HIGHER_IS_BETTER,
        minimum=Decimal(0),
        maximum=Decimal(100),
        pass_mark=Decimal(60),
        continuous=True,
        step=Decimal(1),
        symbols=(
            _sym("优秀", _P, band=("90", "100"), marks="90–100", description="excellent"),
            _sym("良好", _P, band=("80", "90"), marks="80–89", description="good"),
            _sym("中等", _P, band=("70", "80"), marks="70–79", description="average"),
            _sym("及格", _P, band=("60", "70"), marks="60–69", description="pass"),
            _sym("不及格", _F, band=("0", "60"), marks="0–59", description="fail"),
            _sym("合格", _U, description="qualified (two-level grading; not the same as 及格)"),
            _sym("不合格", _F, description="not qualified (two-level grading)"),
        ),
        fail_symbol="不及格",
        ungraded_symbol="合格",
        countries=("CN",),
        source=_cite("§3", "R41", "R42"),
        note="Marks 0–100, lowest course pass 60, five bands; 合格/不合格 two-level grading. The "
        "band limits 80 and 70 are R41's (the reference text names the bands, 90–100 and 60). "
        "GPA mappings vary by university (stepwise 90–100 → 4.0 … 60–63 → 1.0; PKU "
        "4 − 3(100 − x)²/1600).",
    ),
    GradeScaleSpec(
        id="th-4.0",
        name="Thailand 4-point letter grades",
        direction=HIGHER_IS_BETTER,
        minimum=Decimal(0),
        maximum=Decimal(4),
        pass_mark=Decimal(1),
        symbols=(
            _sym("A", _P, "4"),
            _sym("B+", _P, "3.5"),
            _sym("B", _P, "3"),
            _sym("C+", _P, "2.5"),
            _sym("C", _P, "2"),
            _sym("D+", _P, "1.5"),
            _sym("D", _P, "1"),
            _sym("F", _F, "0"),
            _sym("S", _U, description="satisfactory"),
            _sym("U", _F, description="unsatisfactory"),
            _sym("CE", _U, description="credit for prior learning"),
            _sym("CS", _U, description="credit for prior learning"),
            _sym("CT", _U, description="credit for prior learning"),
            _sym("CP", _U, description="credit for prior learning"),
            _sym("I", _N, description="incomplete"),
            _sym("W", _N, description="withdrawn"),
        ),
        fail_symbol="F",
        ungraded_symbol="S",
        countries=("TH",),
        source=_cite("§3", "R54", "R55", "R28"),
        note="Lowest course pass D (1.0); a degree needs GPA ≥ 2.00. Mark bands are set by each "
        "institution (A = 80–100 at Payap, 88–100 at RU-IIS), so none are given here.",
    ),
    GradeScaleSpec(
        id="bd-ugc",
        name="Bangladesh UGC uniform grading (4.00)",
        direction=HIGHER_IS_BETTER,
        minimum=Decimal(0),
        maximum=Decimal(4),
        pass_mark=Decimal(2),
        symbols=(
            _sym("A+", _P, "4.00", marks="80–100"),
            _sym("A", _P, "3.75", marks="75–79"),
            _sym("A-", _P, "3.50", marks="70–74"),
            _sym("B+", _P, "3.25", marks="65–69"),
            _sym("B", _P, "3.00", marks="60–64"),
            _sym("B-", _P, "2.75", marks="55–59"),
            _sym("C+", _P, "2.50", marks="50–54"),
            _sym("C", _P, "2.25", marks="45–49"),
            _sym("D", _P, "2.00", marks="40–44"),
            _sym("F", _F, marks="0–39"),
        ),
        fail_symbol="F",
        countries=("BD",),
        source=_cite("§3", "R48", "R49"),
        note="Lowest pass D (2.00), 40 %. The reference gives the marks of A+ (≥80) and D "
        "(40–44); the bands between are the 5-mark steps of the UGC uniform grading (R48) that "
        "join them. The reference gives no grade point for F. Private universities differ "
        "(e.g. NSU: A ≥93, D 60–66 = 1.00).",
    ),
    GradeScaleSpec(
        id="my-4.0",
        name="Malaysia 4-point letter grades (Universiti Malaya)",
        direction=HIGHER_IS_BETTER,
        minimum=Decimal(0),
        maximum=Decimal(4),
        pass_mark=Decimal(2),
        symbols=(
            _sym("A+", _P, "4.0", marks="90–100"),
            _sym("A", _P, "4.0"),
            _sym("A-", _P, "3.7"),
            _sym("B+", _P, "3.3"),
            _sym("B", _P, "3.0"),
            _sym("B-", _P, "2.7"),
            _sym("C+", _P, "2.3"),
            _sym("C", _P, "2.0", marks="50–54"),
            _sym("C-", _F),
            _sym("D+", _F),
            _sym("D", _F),
            _sym("F", _F),
        ),
        fail_symbol="F",
        countries=("MY",),
        source=_cite("§3", "R61", "R62"),
        note="Lowest course pass C (2.0) at UM; MQA-mandated courses need C. The reference elides "
        "the grade points below C ('C− … F = fail'), so the failing symbols carry none. OUM uses "
        "3.67/3.33 steps and a conditional pass at C−/D if CGPA ≥ 2.0: a different scale.",
    ),
    GradeScaleSpec(
        id="in-10",
        name="India UGC 10-point grades and CGPA",
        direction=HIGHER_IS_BETTER,
        minimum=Decimal(0),
        maximum=Decimal(10),
        pass_mark=Decimal(4),
        continuous=True,
        step=Decimal("0.01"),
        symbols=(
            _sym("O", _P, "10", description="outstanding"),
            _sym("A+", _P, "9"),
            _sym("A", _P, "8"),
            _sym("B+", _P, "7"),
            _sym("B", _P, "6"),
            _sym("C", _P, "5"),
            _sym("P", _P, "4", description="pass"),
            _sym("F", _F, "0", description="fail"),
            _sym("Ab", _F, description="absent"),
            _sym("CT", _U, description="credit transfer"),
        ),
        fail_symbol="F",
        countries=("IN",),
        source=_cite("§3", "R43", "R44", "R45"),
        note="Lowest pass P (4). SGPA/CGPA are values on the same 0–10 axis, rounded to 2 "
        "decimals. Mark bands vary (O = 90–100 or ≥80; pass at 40 %, or 36 % → D), so none are "
        "given here.",
    ),
    GradeScaleSpec(
        id="ph-1-5",
        name="Philippines 1.0–5.0 grades (1.0 best)",
        direction=LOWER_IS_BETTER,
        minimum=Decimal("1.0"),
        maximum=Decimal("5.0"),
        pass_mark=Decimal("3.0"),
        continuous=True,
        step=Decimal("0.25"),
        min_decimals=1,
        symbols=(
            _sym("4.0", _F, "4.0", description="conditional (not yet a pass)"),
            _sym("5.0", _F, "5.0", description="fail"),
            _sym("INC", _N, description="incomplete"),
            _sym("DRP", _N, description="dropped"),
        ),
        fail_symbol="5.0",
        countries=("PH",),
        source=_cite("§3", "R64", "R65"),
        note="Inverted: 1.0 best … 3.0 lowest pass (≈75 %), 4.0 conditional, 5.0 fail. There is "
        "no national grading system; each institution prints its scale, and some use a 4.0-high "
        "scale. Suggested grades use quarter steps (1.0, 1.25, … as at UPLB, R65); the "
        "reference text itself does not list the steps.",
    ),
    GradeScaleSpec(
        id="ects-a-f",
        name="ECTS grading scale A–F (percentile based)",
        direction=HIGHER_IS_BETTER,
        minimum=None,
        maximum=None,
        pass_mark=None,
        symbols=(
            _sym("A", _P, description="best 10 % of passing students"),
            _sym("B", _P, description="next 25 %"),
            _sym("C", _P, description="next 30 %"),
            _sym("D", _P, description="next 25 %"),
            _sym("E", _P, description="lowest 10 %"),
            _sym("FX", _F, description="fail: some more work required"),
            _sym("F", _F, description="fail: considerable further work required"),
        ),
        shares=tuple(
            (symbol, Decimal(share))
            for symbol, share in (("A", 10), ("B", 25), ("C", 30), ("D", 25), ("E", 10))
        ),
        fail_symbol="F",
        countries=(),
        source=_cite("§3", "R70", "R71", "R72"),
        note="The old ECTS scale gave fixed shares of passing students (A 10 %, B 25 %, C 30 %, "
        "D 25 %, E 10 %); the 2009 and 2015 ECTS Users' Guides replaced it with grading tables. "
        "The shares serve as this scale's built-in grading table.",
    ),
    GradeScaleSpec(
        id="pk-hec",
        name="Pakistan HEC 4-point letter grades",
        direction=HIGHER_IS_BETTER,
        minimum=Decimal(0),
        maximum=Decimal(4),
        pass_mark=Decimal(1),
        symbols=(
            _sym("A", _P, "4.0", marks="85–100"),
            _sym("A-", _P, "3.7"),
            _sym("B+", _P, "3.3"),
            _sym("B", _P, "3.0"),
            _sym("B-", _P, "2.7"),
            _sym("C+", _P, "2.3"),
            _sym("C", _P, "2.0"),
            _sym("C-", _P, "1.7"),
            _sym("D", _P, "1.0", marks="50–54"),
            _sym("F", _F),
        ),
        fail_symbol="F",
        countries=("PK",),
        source=_cite("§3", "R46", "R47", "R33"),
        note="Lowest pass D, 50 %. Variants exist (A from 80 %, fractional 3.66/3.33). Credits "
        "transfer only at ≥C (undergraduate) or ≥B (postgraduate): a recognition rule, not a "
        "pass mark. The reference gives no grade point for F.",
    ),
    GradeScaleSpec(
        id="kh-acc",
        name="Cambodia ACC guideline 4-point grades",
        direction=HIGHER_IS_BETTER,
        minimum=Decimal(0),
        maximum=Decimal(4),
        pass_mark=Decimal(1),
        symbols=(
            _sym("A", _P, "4.0", marks="85–100"),
            _sym("B+", _P, "3.5"),
            _sym("B", _P, "3.0"),
            _sym("C+", _P, "2.5"),
            _sym("C", _P, "2.0"),
            _sym("D+", _P, "1.5"),
            _sym("D", _P, "1.0", marks="50–54"),
            _sym("F", _F, marks="0–49"),
        ),
        fail_symbol="F",
        countries=("KH",),
        source=_cite("§3", "R39", "R68"),
        note="Lowest pass D, 50. Other institutions use different bands. The reference gives no "
        "grade point for F.",
    ),
    GradeScaleSpec(
        id="vn-4.0",
        name="Vietnam 4-point letter grades",
        direction=HIGHER_IS_BETTER,
        minimum=Decimal(0),
        maximum=Decimal(4),
        pass_mark=Decimal(1),
        symbols=(
            _sym("A", _P, "4", marks="8.5–10 of 10"),
            _sym("B", _P, "3", marks="7.0–8.4 of 10"),
            _sym("C", _P, "2", marks="5.5–6.9 of 10"),
            _sym("D", _P, "1", marks="4.0–5.4 of 10"),
            _sym("F", _F, "0", marks="below 4.0 of 10"),
            _sym("P", _U, marks="5.0 of 10 or more", description="pass, not counted in the GPA"),
        ),
        fail_symbol="F",
        ungraded_symbol="P",
        countries=("VN",),
        source=_cite("§3", "R56", "R57", "R58"),
        note="Components are marked 0–10 and converted to letters. Lowest pass D (4.0/10). "
        "Classification: ≥3.6 excellent, 3.2 good, 2.5 fair, 2.0 average. Institutions may add "
        "+/− levels (a different scale).",
    ),
)

#: Every grade scale defined here, by ID.
GRADE_SCALES: Mapping[str, GradeScaleSpec] = MappingProxyType(
    {scale.id: scale for scale in _GRADE_SCALES}
)


def credit_scheme(scheme_id: str) -> CreditSchemeSpec:
    """The built-in credit scheme with this ID.

    Raises:
        ProtocolError: MALFORMED when there is none.
    """
    scheme = CREDIT_SCHEMES.get(scheme_id)
    if scheme is None:
        raise ProtocolError(
            Reason.MALFORMED,
            "unknown credit scheme",
            field_problems=[FieldProblem("scheme_id", _unknown("credit scheme", scheme_id))],
        )
    return scheme


def grade_scale(scale_id: str) -> GradeScaleSpec:
    """The built-in grade scale with this ID.

    Raises:
        ProtocolError: MALFORMED when there is none.
    """
    scale = GRADE_SCALES.get(scale_id)
    if scale is None:
        raise ProtocolError(
            Reason.MALFORMED,
            "unknown grade scale",
            field_problems=[FieldProblem("scale_id", _unknown("grade scale", scale_id))],
        )
    return scale


def _unknown(what: str, name: str, known: Iterable[str] | None = None) -> str:
    shown = name if len(name) <= 40 else name[:39] + "…"
    if known is None:
        known = CREDIT_SCHEMES if what == "credit scheme" else GRADE_SCALES
    return f"unknown {what} {shown!r}; known: {', '.join(sorted(known))}"
