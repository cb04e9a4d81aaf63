import base64
import dataclasses
import json
import urllib.parse
from collections.abc import Mapping
from xml.sax.saxutils import escape as xml_escape

import pytest
from hypothesis import given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from connectors.engine.paths import WILDCARD
from connectors.engine.templating import (
    FILTERS,
    NAMESPACES,
    Reference,
    TemplateSyntaxError,
    UnresolvedReference,
    compile_template,
    iter_templates,
    render_json,
    to_text,
)

CONTEXT = {
    "input": {
        "phone": "+1 555 0100",
        "name": "Ada",
        "count": 5,
        "ratio": 0.5,
        "active": True,
        "nothing": None,
        "tags": ["a", "b"],
        "address": {"city": "Paris", "zip": "75001"},
        "items": [{"id": 1}, {"id": 2}, {"id": 3}],
    },
    "contact": {"email": "ada@example.com", "first_name": "Ada"},
    "workspace": {"numverify": {"api_key": "k-123"}, "crm": {"user": "u", "password": "p"}},
    "steps": {
        "validate": {
            "valid": True,
            "carrier": "AT&T",
            "response": {
                "status_code": 200,
                "body": {"data": [{"id": "x1"}, {"id": "x2"}]},
                "headers": CaseInsensitiveDict({"X-Token": "tok", "Content-Type": "application/json"}),
            },
        },
    },
}


def render(source, context=CONTEXT):
    return compile_template(source).render(context)


def render_value(source, context=CONTEXT):
    return compile_template(source).render_value(context)


def test_namespaces():
    assert frozenset({"input", "contact", "workspace", "steps"}) == NAMESPACES


def test_filters():
    assert frozenset({"default", "urlencode", "json", "lower", "upper", "base64"}) == FILTERS


def test_text_without_expressions_renders_to_itself():
    assert render("https://api.example.com/v1/validate") == "https://api.example.com/v1/validate"


def test_input_reference():
    assert render("number={{input.phone}}") == "number=+1 555 0100"


def test_whitespace_inside_braces_is_allowed():
    assert render("{{  input.name\t}} and {{\ninput.count }}") == "Ada and 5"


def test_several_expressions_and_literals():
    assert render("{{input.name}} <{{contact.email}}>!") == "Ada <ada@example.com>!"


def test_contact_reference():
    assert render("{{contact.first_name}}") == "Ada"


def test_workspace_service_field():
    assert render("{{workspace.numverify.api_key}}") == "k-123"


def test_workspace_service_with_a_single_field_gives_that_field():
    assert render("{{workspace.numverify}}") == "k-123"


def test_workspace_service_with_several_fields_is_unresolved():
    with pytest.raises(UnresolvedReference) as excinfo:
        render("{{workspace.crm}}")
    assert excinfo.value.expression == "workspace.crm"


def test_workspace_service_that_is_already_a_value_is_used_as_is():
    assert render("{{workspace.token}}", {"workspace": {"token": "t-1"}}) == "t-1"


def test_step_output():
    assert render("{{steps.validate.carrier}}") == "AT&T"


def test_step_response_status_code():
    assert render_value("{{steps.validate.response.status_code}}") == 200


def test_step_response_body_path():
    assert render("{{steps.validate.response.body.data[1].id}}") == "x2"
    assert render("{{steps.validate.response.body.data.-1.id}}") == "x2"


def test_step_response_headers_match_case_insensitively():
    assert render("{{steps.validate.response.headers.x-token}}") == "tok"
    assert render("{{steps.validate.response.headers.CONTENT-TYPE}}") == "application/json"


def test_negative_index():
    assert render("{{input.tags[-1]}}") == "b"


def test_wildcard():
    assert render_value("{{input.items[*].id}}") == [1, 2, 3]


def test_null_renders_as_empty_text():
    assert render("[{{input.nothing}}]") == "[]"


def test_bool_renders_lowercase():
    assert render("{{input.active}}") == "true"
    assert render("{{input.off}}", {"input": {"off": False}}) == "false"


def test_numbers_render_as_text():
    assert render("{{input.count}}/{{input.ratio}}") == "5/0.5"


def test_containers_render_as_compact_json():
    assert render("{{input.address}} {{input.tags}}") == '{"city":"Paris","zip":"75001"} ["a","b"]'


def test_case_insensitive_dict_renders_as_json():
    assert render("{{steps.validate.response.headers}}") == '{"X-Token":"tok","Content-Type":"application/json"}'


def test_to_text_conversions():
    assert to_text("é") == "é"
    assert to_text(None) == ""
    assert to_text(True) == "true"
    assert to_text(False) == "false"
    assert to_text(7) == "7"
    assert to_text(1.25) == "1.25"
    assert to_text({"a": [1, None]}) == '{"a":[1,null]}'
    assert to_text(("x",)) == '["x"]'


def test_default_applies_when_missing():
    assert render('{{ input.missing | default:"n/a" }}') == "n/a"


def test_default_applies_when_null():
    assert render('{{ input.nothing | default:"n/a" }}') == "n/a"


def test_default_applies_when_namespace_is_absent_from_context():
    assert render('{{ contact.email | default:"none" }}', {"input": {}}) == "none"


def test_default_keeps_a_present_value_and_its_type():
    assert render_value('{{ input.count | default:"0" }}') == 5


def test_default_keeps_empty_string():
    assert render('{{ input.empty | default:"x" }}', {"input": {"empty": ""}}) == ""


def test_default_returns_its_argument_as_a_string():
    assert render_value('{{ input.missing | default:"5" }}') == "5"


def test_default_argument_escapes():
    assert render(r'{{ input.missing | default:"say \"hi\"\\\n\u00e9" }}') == 'say "hi"\\\né'


def test_default_argument_may_contain_braces_and_bars():
    assert render('{{ input.missing | default:"a}}b|c" }}!') == "a}}b|c!"


def test_default_argument_may_be_empty():
    assert render('[{{ input.missing | default:"" }}]') == "[]"


def test_urlencode_filter():
    assert render("{{ input.q | urlencode }}", {"input": {"q": "a b/c&d=é"}}) == "a%20b%2Fc%26d%3D%C3%A9"


def test_json_filter_serialises_the_value():
    assert render("{{ input.name | json }}") == '"Ada"'
    assert render("{{ input.address | json }}") == '{"city":"Paris","zip":"75001"}'
    assert render("{{ input.nothing | json }}") == "null"
    assert render("{{ input.active | json }}") == "true"


def test_json_filter_keeps_non_ascii_characters():
    assert render("{{ input.city | json }}", {"input": {"city": "Zürich"}}) == '"Zürich"'


def test_lower_filter():
    assert render("{{ input.name | lower }}") == "ada"


def test_upper_filter():
    assert render("{{ input.name | upper }}") == "ADA"


def test_base64_filter_encodes_the_utf8_text():
    assert render("{{ input.s | base64 }}", {"input": {"s": "héllo"}}) == "aMOpbGxv"
    assert render("{{ input.count | base64 }}") == "NQ=="


def test_text_filters_turn_null_into_empty_text():
    assert render("[{{ input.nothing | upper }}]") == "[]"


def test_text_filters_stringify_their_input():
    assert render("{{ input.active | upper }}") == "TRUE"


def test_filters_chain_left_to_right():
    assert render('{{ input.missing | default:"n/a" | upper }}') == "N/A"
    assert render('{{ input.name | lower | default:"x" | base64 }}') == "YWRh"
    assert render("{{ input.name | json | urlencode }}") == "%22Ada%22"


def test_default_after_other_filters_still_catches_a_missing_reference():
    assert render('{{ input.missing | upper | default:"none" }}') == "none"


def test_filter_result_is_a_string_in_render_value():
    assert render_value("{{ input.count | json }}") == "5"


def test_missing_reference_with_filters_but_no_default_is_unresolved():
    with pytest.raises(UnresolvedReference):
        render("{{ input.missing | upper }}")


def test_missing_reference_is_unresolved():
    with pytest.raises(UnresolvedReference) as excinfo:
        render("tel={{ input.fax }}")
    assert excinfo.value.expression == "input.fax"
    assert str(excinfo.value) == "unresolved reference {{input.fax}}"


def test_unresolved_expression_text_excludes_filters_and_whitespace():
    with pytest.raises(UnresolvedReference) as excinfo:
        render("{{  input.items[7].id | upper }}")
    assert excinfo.value.expression == "input.items[7].id"


def test_namespace_absent_from_context_is_unresolved():
    with pytest.raises(UnresolvedReference) as excinfo:
        render("{{ steps.validate.valid }}", {"input": {}})
    assert excinfo.value.expression == "steps.validate.valid"


def test_null_is_not_unresolved():
    assert render_value("{{input.nothing}}") is None


class LazyCredentials(Mapping):
    """Decrypts on item access only; iterating it would be a bug in the template engine."""

    def __init__(self, vault):
        self.vault = vault
        self.opened = []

    def __getitem__(self, service):
        self.opened.append(service)
        return dict(self.vault[service])

    def __iter__(self):
        raise AssertionError("the workspace mapping must not be iterated")

    def __len__(self):
        raise AssertionError("the workspace mapping must not be sized")


def test_lazy_workspace_mapping_is_read_by_key_only():
    workspace = LazyCredentials({"crm": {"token": "t"}, "other": {"k": "v"}})
    assert render("{{workspace.crm.token}}/{{workspace.crm}}", {"workspace": workspace}) == "t/t"
    assert workspace.opened == ["crm", "crm"]


def test_lazy_workspace_mapping_missing_service_is_unresolved():
    with pytest.raises(UnresolvedReference) as excinfo:
        render("{{workspace.nope.token}}", {"workspace": LazyCredentials({})})
    assert excinfo.value.expression == "workspace.nope.token"


def test_escape_applies_to_values_only():
    template = compile_template("<name a='1'>{{input.v}}</name>&amp;")
    rendered = template.render({"input": {"v": "<b> & 'c'"}}, escape=xml_escape)
    assert rendered == "<name a='1'>&lt;b&gt; &amp; 'c'</name>&amp;"


def test_escape_applies_after_text_conversion():
    template = compile_template("{{input.v}}")
    assert template.render({"input": {"v": {"a": "<"}}}, escape=xml_escape) == '{"a":"&lt;"}'


def test_escape_applies_to_filtered_defaults():
    template = compile_template('{{input.v | default:"<none>"}}')
    assert template.render({"input": {}}, escape=xml_escape) == "&lt;none&gt;"


def test_render_value_keeps_int():
    assert render_value("{{input.count}}") == 5


def test_render_value_keeps_float():
    assert render_value("{{input.ratio}}") == 0.5


def test_render_value_keeps_bool():
    assert render_value("{{input.active}}") is True


def test_render_value_keeps_null():
    assert render_value("{{input.nothing}}") is None


def test_render_value_keeps_list():
    assert render_value("{{input.tags}}") == ["a", "b"]


def test_render_value_keeps_dict():
    assert render_value("{{ input.address }}") == {"city": "Paris", "zip": "75001"}


def test_render_value_with_surrounding_text_is_a_string():
    assert render_value("n={{input.count}}") == "n=5"


def test_render_value_with_surrounding_whitespace_is_a_string():
    assert render_value(" {{input.count}}") == " 5"


def test_render_value_of_two_expressions_is_a_string():
    assert render_value("{{input.count}}{{input.count}}") == "55"


def test_render_value_of_plain_text_is_the_text():
    assert render_value("plain") == "plain"


def test_is_single_expression():
    assert compile_template('{{ input.count | default:"1" }}').is_single_expression is True
    assert compile_template(" {{input.count}}").is_single_expression is False
    assert compile_template("{{input.a}}{{input.b}}").is_single_expression is False
    assert compile_template("text").is_single_expression is False


def test_has_expressions():
    assert compile_template("a {{input.a}}").has_expressions is True
    assert compile_template("a }} b").has_expressions is False


def test_references_in_order_of_appearance():
    template = compile_template("{{input.a}} {{ steps.s.items[*].id | json }} {{input.a}} {{workspace.crm.user}}")
    assert template.references == (
        Reference(namespace="input", path=("a",), text="input.a"),
        Reference(namespace="steps", path=("s", "items", WILDCARD, "id"), text="steps.s.items[*].id"),
        Reference(namespace="input", path=("a",), text="input.a"),
        Reference(namespace="workspace", path=("crm", "user"), text="workspace.crm.user"),
    )


def test_reference_of_a_whole_namespace():
    assert compile_template("{{input}}").references == (Reference(namespace="input", path=(), text="input"),)
    assert render_value("{{contact}}") == {"email": "ada@example.com", "first_name": "Ada"}


def test_reference_is_frozen():
    reference = compile_template("{{input.a}}").references[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.text = "input.b"


def test_text_without_expressions_has_no_references():
    assert compile_template("plain").references == ()


def test_compile_template_is_cached():
    assert compile_template("{{input.cached}}") is compile_template("{{input.cached}}")


def test_stray_closing_braces_are_literal_text():
    assert render("a }} b {{input.name}} }}") == "a }} b Ada }}"


def test_single_braces_are_literal_text():
    assert render("{a} {{input.name}}") == "{a} Ada"


def test_third_closing_brace_is_literal_text():
    assert render("{{input.name}}}") == "Ada}"


def test_render_json_keeps_the_type_of_single_expressions():
    body = {
        "count": "{{input.count}}",
        "label": "n={{input.count}}",
        "nested": [{"tags": "{{input.tags}}", "active": "{{input.active}}"}, "{{input.nothing}}"],
        "fixed": 3,
        "flag": False,
        "none": None,
    }
    assert render_json(body, CONTEXT) == {
        "count": 5,
        "label": "n=5",
        "nested": [{"tags": ["a", "b"], "active": True}, None],
        "fixed": 3,
        "flag": False,
        "none": None,
    }


def test_render_json_does_not_template_keys():
    assert render_json({"{{input.name}}": "{{input.name}}"}, CONTEXT) == {"{{input.name}}": "Ada"}


def test_render_json_of_a_bare_string():
    assert render_json("{{input.count}}", CONTEXT) == 5


def test_render_json_raises_unresolved_reference():
    with pytest.raises(UnresolvedReference):
        render_json({"a": ["{{input.missing}}"]}, CONTEXT)


def test_iter_templates_yields_every_string_with_its_location():
    value = {"a": "x", "b": [1, "{{input.y}}", {"c": "z"}], "d": None, "e": {"{{k}}": 2}}
    assert list(iter_templates(value)) == [(("a",), "x"), (("b", 1), "{{input.y}}"), (("b", 2, "c"), "z")]


def test_iter_templates_of_a_bare_string():
    assert list(iter_templates("{{input.a}}")) == [((), "{{input.a}}")]


def test_unclosed_braces_are_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("a {{input.name")
    assert str(excinfo.value) == "unclosed '{{' at position 2 in 'a {{input.name'"


def test_second_unclosed_braces_are_a_syntax_error():
    with pytest.raises(TemplateSyntaxError):
        compile_template("{{input.a}} {{input.b")


def test_empty_expression_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("a {{  }} b")
    assert str(excinfo.value) == "empty expression {{  }}"


def test_filters_without_a_reference_are_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("{{ | upper }}")
    assert str(excinfo.value) == "no reference before the filters in {{ | upper }}"


@pytest.mark.parametrize("source", ["{{input..a}}", "{{input.a[}}", "{{input.a[x]}}", "{{input.a b}}", "{{input.}}"])
def test_bad_path_is_a_syntax_error(source):
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template(source)
    assert str(excinfo.value).startswith(f"bad reference in {source}: ")


def test_unknown_namespace_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("{{ secrets.key }}")
    assert str(excinfo.value) == (
        "unknown namespace 'secrets' in {{ secrets.key }}; expected one of: contact, input, steps, workspace"
    )


def test_expression_starting_with_an_index_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("{{[0].id}}")
    assert "unknown namespace 0" in str(excinfo.value)


def test_unknown_filter_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("{{ input.name | capitalize }}")
    assert str(excinfo.value) == (
        "unknown filter 'capitalize' in {{ input.name | capitalize }}; "
        "expected one of: base64, default, json, lower, upper, urlencode"
    )


def test_empty_filter_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("{{ input.name || upper }}")
    assert str(excinfo.value) == "empty filter in {{ input.name || upper }}"


def test_trailing_filter_bar_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("{{ input.name | }}")
    assert str(excinfo.value) == "empty filter in {{ input.name | }}"


def test_default_without_argument_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template("{{ input.name | default }}")
    assert str(excinfo.value) == "'default' needs an argument, e.g. default:\"n/a\", in {{ input.name | default }}"


@pytest.mark.parametrize("argument", ["x", "'x'", "", "5"])
def test_unquoted_filter_argument_is_a_syntax_error(argument):
    source = f"{{{{ input.name | default:{argument} }}}}"
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template(source)
    assert str(excinfo.value) == f"the argument of 'default' in {source} must be a double-quoted string"


def test_unterminated_filter_argument_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template('{{ input.name | default:"n/a }}')
    assert "must be a double-quoted string" in str(excinfo.value)


def test_bad_escape_in_filter_argument_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template(r'{{ input.name | default:"\q" }}')
    assert str(excinfo.value) == r'bad string "\q" in {{ input.name | default:"\q" }}: Invalid \escape'


def test_argument_to_a_filter_without_arguments_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template('{{ input.name | upper:"x" }}')
    assert str(excinfo.value) == "filter 'upper' takes no argument, in {{ input.name | upper:\"x\" }}"


def test_text_after_a_filter_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template('{{ input.name | default:"a" "b" }}')
    assert str(excinfo.value) == 'unexpected \'"b"\' in {{ input.name | default:"a" "b" }}'


@pytest.mark.parametrize("source", ["{{steps}}", "{{steps.validate}}", "{{steps[0].valid}}"])
def test_step_reference_without_an_output_is_a_syntax_error(source):
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template(source)
    assert str(excinfo.value) == f"{source} must name a step and what to take from it, e.g. steps.NAME.OUTPUT"


@pytest.mark.parametrize("source", ["{{workspace}}", "{{workspace.a.b.c}}", "{{workspace.a[0]}}"])
def test_malformed_workspace_reference_is_a_syntax_error(source):
    with pytest.raises(TemplateSyntaxError) as excinfo:
        compile_template(source)
    assert str(excinfo.value) == f"{source} must be workspace.SERVICE or workspace.SERVICE.FIELD"


def test_syntax_errors_are_value_errors():
    assert issubclass(TemplateSyntaxError, ValueError)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@given(st.text().filter(lambda text: "{{" not in text))
def test_literal_text_renders_to_itself(text):
    assert compile_template(text).render({}) == text


@given(_JSON)
def test_json_filter_round_trips(value):
    assert json.loads(render("{{input.v | json}}", {"input": {"v": value}})) == value


@given(_JSON)
def test_single_expression_keeps_any_json_value(value):
    assert render_value("{{input.v}}", {"input": {"v": value}}) == value


@given(st.text())
def test_urlencode_unquotes_to_the_input(text):
    encoded = render("{{input.v | urlencode}}", {"input": {"v": text}})
    assert urllib.parse.unquote(encoded) == text
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~%")


@given(st.text())
def test_base64_decodes_to_the_input(text):
    encoded = render("{{input.v | base64}}", {"input": {"v": text}})
    assert base64.b64decode(encoded).decode() == text


@given(st.text())
def test_case_filters_match_python(text):
    context = {"input": {"v": text}}
    assert render("{{input.v | upper}}|{{input.v | lower}}", context) == f"{text.upper()}|{text.lower()}"


@given(st.text())
def test_default_argument_round_trips_through_json_escapes(text):
    assert render(f"{{{{ input.missing | default:{json.dumps(text)} }}}}", {"input": {}}) == text


@given(st.text().filter(lambda text: "{" not in text), st.text().filter(lambda text: "{{" not in text))
def test_escape_never_touches_literal_text(before, after):
    template = compile_template(f"{before}{{{{input.v}}}}{after}")
    assert template.render({"input": {"v": "x"}}, escape=lambda text: "ESCAPED") == f"{before}ESCAPED{after}"
