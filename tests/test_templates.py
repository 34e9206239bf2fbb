"""Template analysis: parsing, spec checks, path regexes, ambiguity and collisions."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

import pytest
from butlerc.templates import (
    Field,
    KeyShape,
    Template,
    TemplateSyntaxError,
    Text,
    ambiguity,
    find_collision,
    find_collisions,
    may_collide,
    parse_template,
    path_regex,
    prefilter_key,
    render_example,
    spec_problem,
    split_ambiguity,
)
from hypothesis import assume, given
from hypothesis import strategies as st

RAW = "{field}/{dateObs}/{pointing:05d}/{filter}/HSC-{visit:07d}-{ccd:03d}.fits"
BIAS = "BIAS/{calibDate}/NONE/BIAS-{calibDate}-{ccd:03d}.fits"
WARP = "deepCoadd/{filter}/{tract}/{patch}/warp-{filter}-{tract}-{patch}-{visit}.fits"

HSC: dict[str, KeyShape] = {
    "field": KeyShape("str"),
    "dateObs": KeyShape("date"),
    "calibDate": KeyShape("date"),
    "pointing": KeyShape("int", minimum=0, maximum=99999),
    "filter": KeyShape("str", choices=("HSC-G", "HSC-R", "HSC-I", "HSC-Z", "HSC-Y", "NB921")),
    "visit": KeyShape("int", minimum=0, maximum=9_999_999),
    "ccd": KeyShape("int", minimum=0, maximum=111),
    "tract": KeyShape("int", minimum=0),
    "patch": KeyShape("str", pattern=r"[0-9]+,[0-9]+"),
}


def regex(text: str, shapes: Mapping[str, KeyShape] = HSC) -> re.Pattern[str]:
    return re.compile(path_regex(parse_template(text), shapes))


def collide(a: str, b: str, shapes: Mapping[str, KeyShape] = HSC) -> str | None:
    return find_collision(parse_template(a), shapes, parse_template(b), shapes)


# ---- parsing ------------------------------------------------------------------------------------
def test_parse_splits_text_and_fields_with_offsets() -> None:
    template = parse_template("raw/{visit:07d}-{ccd}.fits")
    assert template.segments == (
        Text("raw/", 0),
        Field("visit", "07d", 4, 11),
        Text("-", 15),
        Field("ccd", "", 16, 5),
        Text(".fits", 21),
    )
    assert template.keys == ("visit", "ccd")
    assert [f.key for f in template.fields] == ["visit", "ccd"]


def test_field_span_covers_the_braces() -> None:
    template = parse_template(RAW)
    for field in template.fields:
        spec = f":{field.spec}" if field.spec else ""
        assert RAW[field.offset : field.offset + field.length] == f"{{{field.key}{spec}}}"


def test_repeated_key_is_one_key() -> None:
    template = parse_template(BIAS)
    assert [f.key for f in template.fields] == ["calibDate", "calibDate", "ccd"]
    assert template.keys == ("calibDate", "ccd")


def test_doubled_braces_are_literal_text() -> None:
    template = parse_template("a{{b}}/{v}{{")
    assert template.segments == (Text("a{b}/", 0), Field("v", "", 7, 3), Text("{", 10))
    assert render_example(template, {"v": 1}) == "a{b}/1{"


def test_colons_after_the_first_belong_to_the_spec() -> None:
    (field,) = parse_template("{t:%H:%M}").fields
    assert (field.key, field.spec) == ("t", "%H:%M")


@pytest.mark.parametrize(
    ("text", "offset", "fragment"),
    [
        ("raw/{visit", 4, "unclosed '{'"),
        ("raw/visit}", 9, "single '}'"),
        ("raw/{}.fits", 4, "empty field"),
        ("raw/{:03d}", 4, "empty field"),
        ("raw/{0}", 5, "positional"),
        ("raw/{1:03d}", 5, "positional"),
        ("raw/{visit!r}", 10, "conversions"),
        ("raw/{visit:{width}d}", 11, "nested"),
        ("raw/{a.b}", 6, "attribute access"),
        ("raw/{a[0]}", 6, "index access"),
        ("raw/{a-b}", 5, "not a key name"),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, offset: int, fragment: str) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        parse_template(text)
    assert caught.value.offset == offset
    assert fragment in caught.value.message
    assert str(caught.value) == caught.value.message


# ---- format specs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key_type", "spec"),
    [
        ("int", ""),
        ("int", "d"),
        ("int", "05d"),
        ("int", "+d"),
        ("int", " 3d"),
        ("int", "5d"),
        ("int", "07"),
        ("str", ""),
        ("str", "s"),
        ("str", "10s"),
        ("float", ""),
        ("float", ".3f"),
        ("float", "e"),
        ("float", "10.2g"),
        ("bool", ""),
        ("date", ""),
        ("date", "%Y%m%d"),
        ("date", "%Y-%j"),
        ("datetime", ""),
        ("datetime", "%Y-%m-%dT%H:%M:%S.%f"),
        ("datetime", "night-%Y%m%d"),
    ],
)
def test_specs_that_suit_their_type(key_type: str, spec: str) -> None:
    assert spec_problem(Field("k", spec, 0, 1), key_type) is None


@pytest.mark.parametrize(
    ("key_type", "spec", "message"),
    [
        ("str", "05d", "format spec '05d' needs an int key, but 'k' is str"),
        ("int", "10s", "format spec '10s' needs a str key, but 'k' is int"),
        ("int", ".3f", "format spec '.3f' needs a float key, but 'k' is int"),
        ("float", "d", "format spec 'd' needs an int key, but 'k' is float"),
        ("int", "%Y", "format spec '%Y' needs a date or datetime key, but 'k' is int"),
        ("date", "%Y%H", "format spec '%Y%H' needs a datetime key, but 'k' is date"),
        ("bool", "d", "format spec 'd' needs an int key, but 'k' is bool"),
    ],
)
def test_specs_of_another_type_name_that_type(key_type: str, spec: str, message: str) -> None:
    assert spec_problem(Field("k", spec, 0, 1), key_type) == message


@pytest.mark.parametrize(
    ("key_type", "spec", "fragment"),
    [
        ("int", ",d", "an int field takes"),
        ("int", "x", "an int field takes"),
        ("str", ">10s", "a str field takes"),
        ("float", ".3", "a float field takes"),
        ("bool", "x", "a bool field takes no format spec"),
        ("date", "%Y%q", "'%q' cannot be parsed back"),
        ("datetime", "%c", "'%c' cannot be parsed back"),
        ("date", "Ymd", "strftime directives"),
    ],
)
def test_unsupported_specs_explain_what_works(key_type: str, spec: str, fragment: str) -> None:
    problem = spec_problem(Field("k", spec, 0, 1), key_type)
    assert problem is not None
    assert fragment in problem


# ---- path regexes -------------------------------------------------------------------------------
def test_raw_regex_parses_a_rendered_path() -> None:
    values = {
        "field": "STRIPE82L",
        "dateObs": dt.date(2014, 3, 1),
        "pointing": 671,
        "filter": "HSC-I",
        "visit": 903334,
        "ccd": 22,
    }
    path = render_example(parse_template(RAW), values)
    assert path == "STRIPE82L/2014-03-01/00671/HSC-I/HSC-0903334-022.fits"
    match = regex(RAW).fullmatch(path)
    assert match is not None
    assert match.groupdict() == {
        "field": "STRIPE82L",
        "dateObs": "2014-03-01",
        "pointing": "00671",
        "filter": "HSC-I",
        "visit": "0903334",
        "ccd": "022",
    }


def test_raw_regex_rejects_paths_the_template_cannot_render() -> None:
    pattern = regex(RAW)
    good = "STRIPE82L/2014-03-01/00671/HSC-I/HSC-0903334-022.fits"
    assert pattern.fullmatch(good)
    for bad in (
        "STRIPE82L/2014-03-01/00671/HSC-Q/HSC-0903334-022.fits",  # not a filter
        "STRIPE/82L/2014-03-01/00671/HSC-I/HSC-0903334-022.fits",  # "/" in a str
        "STRIPE82L/2014-13-01/00671/HSC-I/HSC-0903334-022.fits",  # month 13
        "STRIPE82L/2014-03-01/671/HSC-I/HSC-0903334-022.fits",  # not padded
        "STRIPE82L/2014-03-01/00671/HSC-I/HSC-0903334-1022.fits",  # ccd beyond 111's width
        "STRIPE82L/2014-03-01/-0671/HSC-I/HSC-0903334-022.fits",  # sign, minimum is 0
    ):
        assert pattern.fullmatch(bad) is None, bad


def test_repeated_key_is_a_backreference() -> None:
    text = path_regex(parse_template(BIAS), HSC)
    assert text.count("(?P<calibDate>") == 1
    assert "(?P=calibDate)" in text
    pattern = re.compile(text)
    assert pattern.fullmatch("BIAS/2014-03-01/NONE/BIAS-2014-03-01-022.fits")
    assert pattern.fullmatch("BIAS/2014-03-01/NONE/BIAS-2014-03-02-022.fits") is None


def test_warp_template_round_trips() -> None:
    values = {"filter": "HSC-R", "tract": 9813, "patch": "4,5", "visit": 1228}
    path = render_example(parse_template(WARP), values)
    assert path == "deepCoadd/HSC-R/9813/4,5/warp-HSC-R-9813-4,5-1228.fits"
    match = regex(WARP, {**HSC, "visit": KeyShape("int", minimum=0)}).fullmatch(path)
    assert match is not None
    assert match.groupdict() == {
        "filter": "HSC-R",
        "tract": "9813",
        "patch": "4,5",
        "visit": "1228",
    }


def test_int_sign_appears_only_when_the_range_allows_negatives() -> None:
    unknown = regex("{v:05d}", {"v": KeyShape("int")})
    natural = regex("{v:05d}", {"v": KeyShape("int", minimum=0)})
    assert unknown.fullmatch("-0042") and unknown.fullmatch("00042")
    assert natural.fullmatch("-0042") is None and natural.fullmatch("00042")
    assert natural.fullmatch("123456")  # wider than the padding
    assert natural.fullmatch("012345") is None  # never rendered: leading zero beyond the width


def test_choices_are_rendered_with_the_spec_longest_first() -> None:
    shapes = {"c": KeyShape("int", choices=(1, 22, 333))}
    assert path_regex(parse_template("{c:03d}"), shapes) == "(?P<c>001|022|333)"
    assert path_regex(parse_template("{c}"), shapes) == "(?P<c>333|22|1)"
    shapes = {"f": KeyShape("str", choices=("g", "HSC-G", "a.b"))}
    assert path_regex(parse_template("{f}"), shapes) == r"(?P<f>HSC-G|a\.b|g)"


def test_str_values_stay_in_one_directory_unless_slashes_are_allowed() -> None:
    assert regex("{n}.fits", {"n": KeyShape("str")}).fullmatch("a/b.fits") is None
    assert regex("{n}.fits", {"n": KeyShape("str", allow_slash=True)}).fullmatch("a/b.fits")


def test_str_pattern_constrains_the_path() -> None:
    shapes = {"p": KeyShape("str", pattern=r"^[0-9]+,[0-9]+$")}
    pattern = regex("x/{p}/y", shapes)
    assert pattern.fullmatch("x/1,2/y")
    assert pattern.fullmatch("x/1-2/y") is None


def test_global_flags_of_a_pattern_become_scoped() -> None:
    pattern = regex("x/{p}/{q}", {"p": KeyShape("str", pattern="(?i)hsc"), "q": KeyShape("str")})
    assert pattern.fullmatch("x/HsC/y")


def test_dates_and_datetimes_render_iso_8601_by_default() -> None:
    shapes = {"d": KeyShape("date"), "t": KeyShape("datetime")}
    template = parse_template("{d}/{t}")
    for moment in (dt.datetime(2014, 3, 1, 5, 6, 7), dt.datetime(2014, 3, 1, 5, 6, 7, 89)):
        path = render_example(template, {"d": moment.date(), "t": moment})
        assert path == f"{moment.date().isoformat()}/{moment.isoformat()}"
        assert re.fullmatch(path_regex(template, shapes), path)


def test_unsupported_spec_is_refused_by_the_regex_builder() -> None:
    with pytest.raises(ValueError, match="a str field takes"):
        path_regex(parse_template("{v:05d}"), {"v": KeyShape("str")})


# ---- ambiguity ----------------------------------------------------------------------------------
def test_touching_free_text_fields_are_ambiguous() -> None:
    template = parse_template("{a}{b}")
    assert ambiguity(template, {"a": KeyShape("str"), "b": KeyShape("str")}) == template.fields


def test_fixed_width_ints_can_touch() -> None:
    shapes = {
        "v": KeyShape("int", minimum=0, maximum=9_999_999),
        "c": KeyShape("int", minimum=0, maximum=999),
    }
    assert ambiguity(parse_template("{v:07d}{c:03d}"), shapes) is None


@pytest.mark.parametrize(
    ("text", "shape", "ambiguous"),
    [
        ("{v:07d}{c}", KeyShape("int", minimum=0), True),  # no maximum
        ("{v:03d}{c}", KeyShape("int", minimum=0, maximum=1000), True),  # 1000 overflows
        ("{v:03d}{c}", KeyShape("int", minimum=-99, maximum=999), False),  # "-99" is 3 wide
        ("{v:03d}{c}", KeyShape("int", minimum=-100, maximum=999), True),
        ("{v}{c}", KeyShape("int", minimum=0, maximum=9), False),
        ("{v}{c}", KeyShape("str", choices=("HSC-G", "HSC-R")), False),
        ("{v}{c}", KeyShape("str", choices=("N", "NB921")), True),  # "N" is a prefix
        ("{v}{c}", KeyShape("bool"), False),
        ("{v}{c}", KeyShape("date"), False),
        ("{v:%Y%m%d}{c}", KeyShape("datetime"), False),
        ("{v}{c}", KeyShape("datetime"), True),  # optional microseconds
        ("{v}{c}", KeyShape("float"), True),
        ("{v}-{c}", KeyShape("str"), False),
    ],
)
def test_ambiguity_of_the_first_field(text: str, shape: KeyShape, ambiguous: bool) -> None:
    template = parse_template(text)
    pair = ambiguity(template, {"v": shape, "c": KeyShape("str")})
    assert pair == (template.fields if ambiguous else None)


def test_ambiguity_reports_the_first_offending_pair() -> None:
    template = parse_template("{a:03d}{b}{c}{d}")
    shapes = {
        "a": KeyShape("int", minimum=0, maximum=999),
        "b": KeyShape("str"),
        "c": KeyShape("str"),
        "d": KeyShape("str"),
    }
    assert ambiguity(template, shapes) == template.fields[1:3]


# ---- collisions ---------------------------------------------------------------------------------
def test_a_template_collides_with_itself() -> None:
    for text in (RAW, BIAS, WARP, "x"):
        shapes = {**HSC, "visit": KeyShape("int")}
        witness = find_collision(parse_template(text), shapes, parse_template(text), shapes)
        assert witness is not None
        assert re.fullmatch(path_regex(parse_template(text), shapes), witness)


def test_int_and_str_fields_can_render_the_same_path() -> None:
    a, b = parse_template("a/{v:05d}.fits"), parse_template("a/{name}.fits")
    shapes = {"v": KeyShape("int"), "name": KeyShape("str")}
    assert find_collision(a, shapes, b, shapes) == "a/00000.fits"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("raw/{visit}.fits", "calexp/{visit}.fits"),
        ("x/{filter}.fits", "x/HSC-I-.fits"),
        ("x/{filter}.fits", "x/HSC-Q.fits"),
        ("x/{visit:07d}.fits", "x/{ccd:03d}.fits"),  # widths the ranges cannot bridge
        ("{pointing:05d}/corr/{visit:07d}.fits", "{pointing:05d}/output/{visit:07d}.fits"),
        ("x/{field}.fits", "x/a/b.fits"),  # a str key without allow "/"
        ("x/{patch}", "x/{filter}"),  # "," never in a filter
        ("{dateObs}", "{visit:07d}"),
    ],
)
def test_templates_that_cannot_collide(a: str, b: str) -> None:
    assert collide(a, b) is None
    assert collide(b, a) is None


def test_choices_against_a_literal() -> None:
    shapes = {"f": KeyShape("str", choices=("HSC-G", "HSC-R"))}
    a = parse_template("x/{f}.fits")
    assert find_collision(a, shapes, parse_template("x/HSC-I.fits"), {}) is None
    assert find_collision(a, shapes, parse_template("x/HSC-R.fits"), {}) == "x/HSC-R.fits"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("x/{field}.fits", "x/{visit:07d}.fits"),
        ("x/{field}.fits", "x/HSC-{visit:07d}.fits"),
        ("{field}/{dateObs}", "{filter}/{calibDate}"),
        ("x/{field}", "x/{patch}"),
        (BIAS, "BIAS/{dateObs}/NONE/BIAS-{dateObs}-{ccd:03d}.fits"),
        ("x/{field}-{field}", "x/a-{field}"),
    ],
)
def test_templates_that_collide_give_a_witness_both_render(a: str, b: str) -> None:
    witness = collide(a, b)
    assert witness is not None
    assert regex(a).fullmatch(witness) and regex(b).fullmatch(witness)


def test_allowed_slashes_reach_across_directories() -> None:
    shapes = {"n": KeyShape("str", allow_slash=True), "v": KeyShape("int")}
    witness = find_collision(
        parse_template("x/{n}.fits"), shapes, parse_template("x/a/{v}.fits"), shapes
    )
    assert witness == "x/a/0.fits"


def test_find_collisions_reports_each_colliding_pair_once() -> None:
    items = [
        (name, parse_template(text), HSC)
        for name, text in (
            ("raw", RAW),
            ("calexp", "calexp/{visit:07d}/{ccd:03d}.fits"),
            ("other", "calexp/{visit:07d}/{pointing:03d}.fits"),
            ("bias", BIAS),
        )
    ]
    found = find_collisions(items)
    assert [(a, b) for a, b, _ in found] == [("calexp", "other")]


def test_prefilter_rejects_different_literal_directories() -> None:
    shapes = {"v": KeyShape("int"), "f": KeyShape("str")}
    a = prefilter_key(parse_template("{v:05d}/{f}/corr/CORR-{v}.fits"), shapes)
    b = prefilter_key(parse_template("{v:05d}/{f}/output/SRC-{v}.fits"), shapes)
    c = prefilter_key(parse_template("{v:05d}/{f}/corr/{f}.fits"), shapes)
    assert not may_collide(a, b)
    assert may_collide(a, c)


# ---- properties ---------------------------------------------------------------------------------
def _int_cases() -> st.SearchStrategy[tuple[str, KeyShape, object]]:
    bound = st.none() | st.integers(-(10**9), 10**9)

    @st.composite
    def case(draw: st.DrawFn) -> tuple[str, KeyShape, object]:
        spec = draw(
            st.sampled_from(["", "d", "05d", "03d", "+d", "+05d", " d", "5d", "-07d", "0d"])
        )
        low, high = draw(bound), draw(bound)
        if low is not None and high is not None and low > high:
            low, high = high, low
        value = draw(st.integers(low, high))
        return spec, KeyShape("int", minimum=low, maximum=high), value

    return case()


_NO_SLASH = st.characters(codec="utf-8", exclude_characters="/")
_PATTERNS = [r"[a-z]+\d*", r"^HSC-[GRIZY]$", r"(?i)[a-f0-9]{4}", r"\w+(\.\w+)?", r"[^,/]+,[0-9]+"]


def _str_cases() -> st.SearchStrategy[tuple[str, KeyShape, object]]:
    spec = st.sampled_from(["", "s", "3s", "10s"])
    plain = st.tuples(spec, st.just(KeyShape("str")), st.text(_NO_SLASH, min_size=1))
    slashed = st.tuples(
        spec,
        st.just(KeyShape("str", allow_slash=True)),
        st.text(st.characters(codec="utf-8"), min_size=1),
    )
    pattern = st.sampled_from(_PATTERNS).flatmap(
        lambda p: st.tuples(
            st.sampled_from(["", "s"]),
            st.just(KeyShape("str", pattern=p)),
            st.from_regex(p, fullmatch=True).filter(lambda s: "/" not in s),
        )
    )
    choices = st.lists(st.text(_NO_SLASH, min_size=1), min_size=1, max_size=5, unique=True).flatmap(
        lambda cs: st.tuples(spec, st.just(KeyShape("str", choices=tuple(cs))), st.sampled_from(cs))
    )
    return plain | slashed | pattern | choices


def _other_cases() -> st.SearchStrategy[tuple[str, KeyShape, object]]:
    floats = st.floats(allow_nan=False, allow_infinity=False)
    dates = st.dates(min_value=dt.date(1000, 1, 1))
    datetimes = st.datetimes(min_value=dt.datetime(1000, 1, 1))
    return (
        st.tuples(
            st.sampled_from(["", "f", ".3f", ".0f", "e", ".2e", "g", ".4g", "10.3f", "08.2f"]),
            st.just(KeyShape("float")),
            floats,
        )
        | st.tuples(st.just(""), st.just(KeyShape("bool")), st.booleans())
        | st.tuples(
            st.sampled_from(["", "%Y%m%d", "%Y/%j", "%d.%m.%Y", "%%%Y"]),
            st.just(KeyShape("date")),
            dates,
        )
        | st.tuples(
            st.sampled_from(["", "%Y%m%dT%H%M%S", "%Y-%m-%dT%H:%M:%S.%f", "%H%M"]),
            st.just(KeyShape("datetime")),
            datetimes,
        )
        | st.tuples(
            st.just("03d"),
            st.just(KeyShape("int", choices=(1, 12, 123, 1234))),
            st.sampled_from([1, 12, 123, 1234]),
        )
    )


@given(st.one_of(_int_cases(), _str_cases(), _other_cases()))
def test_render_then_match_gives_back_the_rendered_value(
    case: tuple[str, KeyShape, object],
) -> None:
    spec, shape, value = case
    field = f"{{k:{spec}}}" if spec else "{k}"
    template = parse_template(f"pre/{field}/post-{field}.x")
    assert spec_problem(template.fields[0], shape.type) is None
    path = render_example(template, {"k": value})
    match = re.fullmatch(path_regex(template, {"k": shape}), path)
    assert match is not None, (path, path_regex(template, {"k": shape}))
    assert match["k"] == render_example(parse_template(field), {"k": value})


@given(
    st.builds(
        dict,
        field=st.text(_NO_SLASH, min_size=1),
        dateObs=st.dates(min_value=dt.date(1000, 1, 1)),
        pointing=st.integers(0, 99999),
        filter=st.sampled_from(HSC["filter"].choices or ()),
        visit=st.integers(0, 9_999_999),
        ccd=st.integers(0, 111),
    )
)
def test_raw_paths_round_trip(values: dict[str, object]) -> None:
    template = parse_template(RAW)
    match = re.fullmatch(path_regex(template, HSC), render_example(template, values))
    assert match is not None
    assert match.groupdict() == {
        s.key: render_example(Template("", (s,)), values) for s in template.fields
    }


# Small templates over a fixed set of keys, to compare collision answers with the regexes.
POOL: dict[str, KeyShape] = {
    "v": KeyShape("int", minimum=0, maximum=999),
    "w": KeyShape("int"),
    "n": KeyShape("str"),
    "s": KeyShape("str", allow_slash=True),
    "f": KeyShape("str", choices=("g", "r", "HSC-G", "0")),
    "d": KeyShape("date"),
    "p": KeyShape("str", pattern=r"[a-c]+[0-9]?"),
}
_PIECES = ["a", "0", "-", "/", ".fits", "HSC-", "{v:03d}", "{w}", "{n}", "{s}", "{f}", "{d}", "{p}"]
templates = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=6).map(
    lambda pieces: parse_template("".join(pieces))
)
_VALUES = st.fixed_dictionaries(
    {
        "v": st.integers(0, 999),
        "w": st.integers(-50, 5000),
        "n": st.text(st.sampled_from("a0-.HSCG"), min_size=1, max_size=4),
        "s": st.text(st.sampled_from("a0-/.fits"), min_size=1, max_size=6),
        "f": st.sampled_from(POOL["f"].choices or ()),
        "d": st.dates(min_value=dt.date(1000, 1, 1)),
        "p": st.from_regex(r"[a-c]+[0-9]?", fullmatch=True),
    }
)


@given(templates, templates)
def test_collision_search_is_symmetric_and_its_witness_is_real(a: Template, b: Template) -> None:
    forward, backward = find_collision(a, POOL, b, POOL), find_collision(b, POOL, a, POOL)
    assert (forward is None) == (backward is None)
    for witness in (forward, backward):
        if witness is not None:
            assert re.fullmatch(path_regex(a, POOL), witness)
            assert re.fullmatch(path_regex(b, POOL), witness)


@given(templates)
def test_every_template_collides_with_itself(template: Template) -> None:
    assert find_collision(template, POOL, template, POOL) is not None


@given(templates, templates, _VALUES)
def test_a_path_both_templates_match_is_found(
    a: Template, b: Template, values: dict[str, object]
) -> None:
    assume(len(a.keys) == len(a.fields) and len(b.keys) == len(b.fields))  # no repeated keys
    path = render_example(a, values)
    if re.fullmatch(path_regex(b, POOL), path):
        assert find_collision(a, POOL, b, POOL) is not None


def test_touching_fields_that_start_with_different_characters_split_one_way() -> None:
    shapes = {
        "tract": KeyShape("int", minimum=0),
        "subdir": KeyShape("str", pattern=r"(/[^/]+)*", allow_slash=True),
        "filter": KeyShape("str"),
        "subfilter": KeyShape("int"),
    }
    assert ambiguity(parse_template("plots/tract-{tract}{subdir}/p.png"), shapes) is None
    template = parse_template("dcrCoadd/{filter}{subfilter}of3/x.fits")
    assert ambiguity(template, shapes) == template.fields


# ---- paths that split more than one way across literal text -----------------------------------

SPLIT_CASES = [
    # (template, shapes, ambiguous?)
    (
        "plots/{filter}/plot-{filter}-{description}-{style}.png",
        {"filter": KeyShape("str"), "description": KeyShape("str"), "style": KeyShape("str")},
        True,
    ),
    (
        "raw/{visit:07d}-{ccd:03d}.fits",
        {
            "visit": KeyShape("int", minimum=0, maximum=9_999_999),
            "ccd": KeyShape("int", minimum=0, maximum=999),
        },
        False,
    ),
    # the first fields, split by "/", pin the repeats: one data ID per path
    (
        "dr/{filter}/{tract}/calexp-{filter}-{tract}.fits",
        {"filter": KeyShape("str"), "tract": KeyShape("int")},
        False,
    ),
    # an int with no range may be negative: a="0-", b=1 and a="0", b=-1 render alike
    ("x/{a}-{b}.fits", {"a": KeyShape("str"), "b": KeyShape("int")}, True),
    (
        "p/visit-{visit}{subdir}/plot-{description}-{style}.png",
        {
            "visit": KeyShape("int", minimum=0),
            "subdir": KeyShape("str", pattern=r"(/[^/]+)*", allow_slash=True),
            "description": KeyShape("str"),
            "style": KeyShape("str"),
        },
        True,
    ),
    ("{a}-{b}", {"a": KeyShape("str", pattern="[a-z]+"), "b": KeyShape("str")}, False),
]


@pytest.mark.parametrize(("text", "shapes", "ambiguous"), SPLIT_CASES)
def test_split_ambiguity(text: str, shapes: dict[str, KeyShape], ambiguous: bool) -> None:
    witness = split_ambiguity(parse_template(text), shapes)
    assert (witness is not None) == ambiguous, witness


def test_split_witness_really_reads_two_ways() -> None:
    shapes = {"description": KeyShape("str"), "style": KeyShape("str")}
    witness = split_ambiguity(parse_template("plot-{description}-{style}.png"), shapes)
    assert witness is not None
    body = witness.removeprefix("plot-").removesuffix(".png")
    splits = {(body[:i], body[i + 1 :]) for i, c in enumerate(body) if c == "-"}
    assert len({s for s in splits if s[0] and s[1]}) >= 2  # two (description, style) pairs
