import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from connectors.engine.paths import WILDCARD, PathNotFound, PathSyntaxError, extract, parse_path, resolve

BODY = {
    "carrier": "AT&T",
    "country": {"name": "United States", "code": "US"},
    "items": [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}, {"name": "no id"}],
    "nothing": None,
    "headers": {"X-Mode": "live"},
    "matrix": [[1, 2], [3, 4]],
}


def test_parse_dotted_path():
    assert parse_path("country.name") == ("country", "name")


def test_parse_bracket_index():
    assert parse_path("items[0].id") == ("items", 0, "id")


def test_parse_negative_bracket_index():
    assert parse_path("items[-1]") == ("items", -1)


def test_parse_wildcard():
    assert parse_path("items[*].id") == ("items", WILDCARD, "id")


def test_parse_chained_brackets():
    assert parse_path("a[0][1]") == ("a", 0, 1)


def test_parse_numeric_dot_segments_stay_strings():
    assert parse_path("items.0.id") == ("items", "0", "id")
    assert parse_path("items.-1") == ("items", "-1")


def test_parse_segment_with_dash_is_one_segment():
    assert parse_path("headers.X-Token") == ("headers", "X-Token")


def test_parse_segment_may_hold_punctuation_other_than_the_reserved_characters():
    assert parse_path("a:b.c{d.e$f") == ("a:b", "c{d", "e$f")


def test_parse_leading_bracket_reaches_into_a_top_level_list():
    assert parse_path("[0].id") == (0, "id")
    assert parse_path("[*]") == (WILDCARD,)


def test_parse_path_is_cached():
    assert parse_path("country.name") is parse_path("country.name")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "empty path"),
        ("a.", "empty segment at position 2 in path 'a.'"),
        (".a", "empty segment at position 0 in path '.a'"),
        ("a..b", "empty segment at position 2 in path 'a..b'"),
        ("a.[0]", "empty segment"),
        ("a[", "unclosed '[' at position 1 in path 'a['"),
        ("a[0", "unclosed '[' at position 1 in path 'a[0'"),
        ("a[x]", "brackets must hold an integer or '*', not 'x', in path 'a[x]'"),
        ("a[]", "brackets must hold an integer or '*', not ''"),
        ("a[1.5]", "brackets must hold an integer or '*', not '1.5'"),
        ("a[ 1 ]", "brackets must hold an integer or '*', not ' 1 '"),
        ("a]", "unexpected ']' at position 1 in path 'a]'"),
        ("a b", "unexpected ' ' at position 1 in path 'a b'"),
        ("a|b", "unexpected '|' at position 1"),
        ("a}b", "unexpected '}' at position 1"),
        ("[0]x", "unexpected 'x' at position 3"),
    ],
)
def test_malformed_path_is_a_syntax_error(path, message):
    with pytest.raises(PathSyntaxError) as excinfo:
        parse_path(path)
    assert message in str(excinfo.value)


def test_path_syntax_error_is_a_value_error():
    assert issubclass(PathSyntaxError, ValueError)


def test_extract_top_level_key():
    assert extract(BODY, "carrier") == "AT&T"


def test_extract_nested_key():
    assert extract(BODY, "country.name") == "United States"


def test_extract_bracket_and_dot_indexes_agree():
    assert extract(BODY, "items[1].id") == 2
    assert extract(BODY, "items.1.id") == 2


def test_extract_negative_index():
    assert extract(BODY, "items[-1].name") == "no id"
    assert extract(BODY, "items.-1.name") == "no id"


def test_extract_chained_indexes():
    assert extract(BODY, "matrix[1][0]") == 3


def test_extract_wildcard_gives_a_list_with_none_where_missing():
    assert extract(BODY, "items[*].id") == [1, 2, None]


def test_extract_nested_wildcards():
    assert extract(BODY, "items[*].tags[*]") == [["a", "b"], [], None]


def test_extract_wildcard_at_the_end_returns_the_list():
    assert extract(BODY, "items[*].tags[0]") == ["a", None, None]
    assert extract(BODY, "matrix[*]") == [[1, 2], [3, 4]]


def test_extract_wildcard_on_a_non_list_is_none():
    assert extract(BODY, "country[*]") is None


def test_extract_header_with_dash():
    assert extract(BODY, "headers.X-Mode") == "live"


def test_extract_from_case_insensitive_headers():
    headers = CaseInsensitiveDict({"Content-Type": "application/json", "X-Mode": "live"})
    assert extract(headers, "x-mode") == "live"
    assert extract({"headers": headers}, "headers.CONTENT-TYPE") == "application/json"


def test_extract_numeric_dot_segment_is_a_key_on_a_mapping():
    assert extract({"0": "zero"}, "0") == "zero"


def test_extract_bracket_index_is_not_a_key_on_a_mapping():
    assert extract({"0": "zero"}, "[0]") is None


def test_extract_from_a_top_level_list():
    assert extract([{"id": 7}], "[0].id") == 7
    assert extract([{"id": 7}], "0.id") == 7


def test_extract_indexes_tuples():
    assert extract({"pair": ("a", "b")}, "pair[-1]") == "b"


def test_extract_does_not_index_strings():
    assert extract({"s": "abc"}, "s[0]") is None
    assert extract({"s": "abc"}, "s.0") is None


def test_extract_missing_key_is_none():
    assert extract(BODY, "country.capital") is None


def test_extract_index_out_of_range_is_none():
    assert extract(BODY, "items[3]") is None
    assert extract(BODY, "items[-4]") is None


def test_extract_non_numeric_segment_on_a_list_is_none():
    assert extract(BODY, "items.first") is None


def test_extract_through_a_scalar_is_none():
    assert extract(BODY, "carrier.name") is None


def test_extract_through_null_is_none():
    assert extract(BODY, "nothing.deeper") is None


def test_extract_malformed_path_raises():
    with pytest.raises(PathSyntaxError):
        extract(BODY, "items[")


def test_resolve_returns_null_values():
    assert resolve(BODY, ("nothing",)) is None


def test_resolve_missing_path_raises_path_not_found():
    with pytest.raises(PathNotFound) as excinfo:
        resolve(BODY, ("country", "capital"))
    assert excinfo.value.segment == "capital"
    assert str(excinfo.value) == "no value at segment 'capital'"


def test_path_not_found_is_a_key_error():
    with pytest.raises(KeyError):
        resolve({}, ("a",))


def test_resolve_empty_path_returns_the_data():
    assert resolve(BODY, ()) is BODY


def test_resolve_only_indexes_a_mapping_by_string():
    with pytest.raises(PathNotFound):
        resolve({1: "one"}, (1,))


_KEY = st.text(
    alphabet=st.characters(blacklist_characters=".[]|}", blacklist_categories=("Zs", "Zl", "Zp", "Cc")),
    min_size=1,
    max_size=8,
).filter(lambda key: not any(char.isspace() for char in key))
_SCALAR = st.none() | st.booleans() | st.integers() | st.text(max_size=10)


@st.composite
def planted(draw):
    """A nested dict/list, a path into it and the value planted at that path."""
    value = draw(_SCALAR)
    data = value
    segments = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        if draw(st.booleans()):
            key = draw(_KEY)
            siblings = draw(st.dictionaries(_KEY, _SCALAR, max_size=3))
            data = {**siblings, key: data}
            segments.append(("key", key))
        else:
            size = draw(st.integers(min_value=1, max_value=4))
            index = draw(st.integers(min_value=0, max_value=size - 1))
            items = draw(st.lists(_SCALAR, min_size=size, max_size=size))
            items[index] = data
            data = items
            written = draw(st.sampled_from([index, index - size]))
            segments.append(("index", written, draw(st.booleans())))
    return data, _format(reversed(segments)), value


def _format(segments):
    path = ""
    for segment in segments:
        if segment[0] == "key":
            path += f".{segment[1]}" if path else segment[1]
        elif segment[2]:
            path += f"[{segment[1]}]"
        else:
            path += f".{segment[1]}" if path else str(segment[1])
    return path


@given(planted())
def test_extract_finds_the_planted_value(case):
    data, path, value = case
    assert extract(data, path) == value


@given(planted(), _KEY)
def test_extract_past_a_scalar_leaf_is_none(case, extra):
    data, path, _ = case
    assert extract(data, f"{path}.{extra}") is None


@given(st.dictionaries(_KEY, _SCALAR), _KEY)
def test_extract_missing_key_is_always_none(data, key):
    assume(key not in data)
    assert extract(data, key) is None


@given(_KEY)
def test_any_allowed_segment_parses_to_itself(key):
    assert parse_path(key) == (key,)
