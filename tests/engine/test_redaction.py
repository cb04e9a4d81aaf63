import base64
import json
import logging
import time
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from connectors.engine.redaction import (
    REDACTED,
    SENSITIVE_HEADERS,
    RedactingLogFilter,
    Redactor,
    current_redactors,
    redaction_scope,
)

# Bytes chosen so that its base64 holds '+' and '/' (and so differs from the URL-safe form) and needs padding.
SECRET = "sk_live_\u00fb\u00ef\u00bf>?"


def _redactor(*secrets: str) -> Redactor:
    redactor = Redactor()
    for secret in secrets:
        redactor.add(secret)
    return redactor


@pytest.fixture
def redacting_caplog(caplog):
    log_filter = RedactingLogFilter()
    caplog.handler.addFilter(log_filter)
    caplog.set_level(logging.INFO)
    yield caplog
    caplog.handler.removeFilter(log_filter)


def test_raw_secret_is_scrubbed():
    assert _redactor("s3cr3t-value").scrub_text("key=s3cr3t-value;") == f"key={REDACTED};"


def test_text_without_secrets_is_unchanged():
    text = "nothing to see here"

    assert _redactor("s3cr3t-value").scrub_text(text) == text


def test_standard_and_urlsafe_base64_differ_for_the_test_secret():
    standard = base64.b64encode(SECRET.encode()).decode()

    assert standard.endswith("=")
    assert standard != base64.urlsafe_b64encode(SECRET.encode()).decode()


@pytest.mark.parametrize(
    "form",
    [
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(SECRET.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
    ],
    ids=[
        "base64",
        "base64-unpadded",
        "base64url",
        "base64url-unpadded",
        "urlencoded",
        "urlencoded-lowercase-hex",
        "quote-plus",
        "json-ascii",
        "json",
    ],
)
def test_derived_form_is_scrubbed(form):
    assert _redactor(SECRET).scrub_text(f"<{form}>") == f"<{REDACTED}>"


def test_url_encoded_secret_with_reserved_characters_is_scrubbed():
    secret = "p@ss word/+&=x"
    redactor = _redactor(secret)

    assert redactor.scrub_text(f"q={quote(secret, safe='')}") == f"q={REDACTED}"
    assert redactor.scrub_text(f"q={quote_plus(secret)}") == f"q={REDACTED}"
    assert redactor.scrub_text(f"/path/{quote(secret)}/x") == f"/path/{REDACTED}/x"


def test_json_escaped_secret_with_quotes_and_backslashes_is_scrubbed():
    secret = 'ab"c\\d\ne'

    scrubbed = _redactor(secret).scrub_text(json.dumps({"token": secret}))

    assert scrubbed == f'{{"token": "{REDACTED}"}}'


def test_python_repr_of_a_secret_is_scrubbed():
    secret = "it's\\here"

    scrubbed = _redactor(secret).scrub_text(repr({"token": secret}))

    assert scrubbed == f"{{'token': \"{REDACTED}\"}}"


def test_xml_escaped_secret_is_scrubbed():
    secret = "a<b&c>\"d'"

    assert _redactor(secret).scrub_text("<k>a&lt;b&amp;c&gt;&quot;d&apos;</k>") == f"<k>{REDACTED}</k>"
    assert _redactor(secret).scrub_text("<k>a&lt;b&amp;c&gt;&quot;d&#x27;</k>") == f"<k>{REDACTED}</k>"


def test_basic_auth_header_is_scrubbed():
    redactor = Redactor()
    redactor.add_basic("alice", "s3cret!")
    header_value = "Basic " + base64.b64encode(b"alice:s3cret!").decode()

    assert redactor.scrub_text(f"Authorization: {header_value}") == f"Authorization: Basic {REDACTED}"
    assert redactor.scrub_text("alice:s3cret!") == REDACTED
    assert redactor.scrub_text("password s3cret!") == f"password {REDACTED}"
    assert redactor.scrub_text("user alice") == "user alice"
    assert redactor.secret_count == 2


def test_basic_auth_with_empty_password_redacts_only_the_encoded_pair():
    redactor = Redactor()
    redactor.add_basic("alice", "")
    encoded = base64.b64encode(b"alice:").decode()

    assert redactor.scrub_text(f"Basic {encoded} for alice:") == f"Basic {REDACTED} for alice:"


def test_longest_secret_wins():
    redactor = _redactor("abc", "abcxyz")

    assert redactor.scrub_text("--abcxyz--abc--") == f"--{REDACTED}--{REDACTED}--"


def test_overlapping_secrets_leave_no_fragment():
    redactor = _redactor("abcd", "cdefgh")

    assert redactor.scrub_text("1abcdefgh2") == f"1{REDACTED}2"


def test_secret_inside_another_secret_leaves_no_fragment():
    redactor = _redactor("xyz", "wxyz1")

    assert redactor.scrub_text("wxyz1 xyz wxyz") == f"{REDACTED} {REDACTED} w{REDACTED}"


def test_adjacent_occurrences_become_one_marker():
    assert _redactor("tok").scrub_text("toktoktok!") == f"{REDACTED}!"


def test_secret_with_regex_metacharacters_is_matched_literally():
    secret = r"a.b*c(d)[e]|f\g^$+?{2}"
    redactor = _redactor(secret)

    assert redactor.scrub_text(f"x{secret}y") == f"x{REDACTED}y"
    assert redactor.scrub_text("axbbbc(d)e|fg") == "axbbbc(d)e|fg"


def test_short_secret_is_still_redacted():
    redactor = _redactor("ab")

    assert redactor.secret_count == 1
    assert redactor.scrub_text("cab") == f"c{REDACTED}"


def test_empty_secret_is_ignored():
    redactor = _redactor("")

    assert redactor.secret_count == 0
    assert redactor.scrub_text("anything") == "anything"


def test_secret_count_counts_distinct_values():
    redactor = _redactor("one-secret", "two-secret", "one-secret")

    assert redactor.secret_count == 2


def test_secrets_added_after_a_scrub_are_scrubbed():
    redactor = _redactor("first-secret")
    assert redactor.scrub_text("second-secret") == "second-secret"

    redactor.add("second-secret")

    assert redactor.scrub_text("first-secret second-secret") == f"{REDACTED} {REDACTED}"


def test_non_string_secret_is_refused():
    with pytest.raises(TypeError):
        Redactor().add(12345)


def test_repr_holds_no_secret():
    assert repr(_redactor("hunter2-secret")) == "<Redactor secrets=1>"


def test_nested_structures_are_scrubbed_including_keys():
    redactor = _redactor("tok-123")
    value = {
        "tok-123": "value",
        "list": ["a tok-123 b", 1, None, True, 2.5],
        "nested": {"deep": ("tok-123", {"x": "Bearer tok-123"})},
    }

    assert redactor.scrub(value) == {
        REDACTED: "value",
        "list": [f"a {REDACTED} b", 1, None, True, 2.5],
        "nested": {"deep": (REDACTED, {"x": f"Bearer {REDACTED}"})},
    }
    assert value["list"][0] == "a tok-123 b"


def test_bytes_are_scrubbed():
    assert _redactor("tok-123").scrub(b"x tok-123 \xff") == b"x [REDACTED] \xff"


def test_sensitive_headers_are_redacted_case_insensitively():
    redactor = _redactor("tok-123")
    redactor.add_header_name("X-Numverify-Key")
    headers = {
        "AUTHORIZATION": "Bearer anything",
        "Cookie": "session=1",
        "x-numverify-KEY": "whatever",
        "X-API-Key": "k",
        "Accept": "application/json",
        "X-Echo": "tok-123",
    }

    assert redactor.scrub_headers(headers) == {
        "AUTHORIZATION": REDACTED,
        "Cookie": REDACTED,
        "x-numverify-KEY": REDACTED,
        "X-API-Key": REDACTED,
        "Accept": "application/json",
        "X-Echo": REDACTED,
    }
    assert headers["AUTHORIZATION"] == "Bearer anything"


def test_default_sensitive_headers_include_the_usual_ones():
    assert {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"} <= SENSITIVE_HEADERS


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://api.example.com/v1?number=123&api_key=abc&API_KEY=def",
            f"https://api.example.com/v1?number=123&api_key={REDACTED}&API_KEY={REDACTED}",
        ),
        ("https://x.test/?access_key=abc", f"https://x.test/?access_key={REDACTED}"),
        ("https://x.test/?Access-Token=abc&b=2", f"https://x.test/?Access-Token={REDACTED}&b=2"),
        ("https://x.test/?key=abc", f"https://x.test/?key={REDACTED}"),
        ("https://x.test/?client_secret=a%20b", f"https://x.test/?client_secret={REDACTED}"),
        ("https://x.test/?keyword=abc", "https://x.test/?keyword=abc"),
        ("https://user:pa55@x.test:8443/p", f"https://user:{REDACTED}@x.test:8443/p"),
        ("https://user@x.test/p", "https://user@x.test/p"),
        ("https://x.test/cb#access_token=abc&state=s", f"https://x.test/cb#access_token={REDACTED}&state=s"),
        ("https://x.test/#section", "https://x.test/#section"),
    ],
)
def test_url_sensitive_parts_are_redacted(url, expected):
    assert Redactor().scrub_url(url) == expected


def test_url_marked_query_param_is_redacted():
    redactor = Redactor()
    redactor.add_query_param("numverify_token")

    assert (
        redactor.scrub_url("https://x.test/?NUMVERIFY-TOKEN=abc&n=1")
        == f"https://x.test/?NUMVERIFY-TOKEN={REDACTED}&n=1"
    )


def test_url_registered_secret_is_scrubbed_in_any_part():
    secret = "s3cr et/+"
    redactor = _redactor(secret)

    assert (
        redactor.scrub_url(f"https://x.test/{quote(secret)}?q={quote_plus(secret)}")
        == f"https://x.test/{REDACTED}?q={REDACTED}"
    )


def test_unparseable_url_is_scrubbed_as_text():
    assert _redactor("tok-123").scrub_url("http://[::1/tok-123") == f"http://[::1/{REDACTED}"


def test_log_message_is_scrubbed_inside_a_scope(redacting_caplog):
    logger = logging.getLogger("tests.redaction")

    with redaction_scope(_redactor("tok-123")):
        logger.info("calling %s with token=%s", "https://x.test", "tok-123")

    record = redacting_caplog.records[0]
    assert record.getMessage() == f"calling https://x.test with token={REDACTED}"
    assert record.args == ()
    assert "tok-123" not in redacting_caplog.text


def test_log_message_is_untouched_outside_a_scope(redacting_caplog):
    logger = logging.getLogger("tests.redaction")
    with redaction_scope(_redactor("tok-123")):
        pass

    logger.info("value %s", "tok-123")

    record = redacting_caplog.records[0]
    assert record.getMessage() == "value tok-123"
    assert record.args == ("tok-123",)


def test_log_exception_text_is_scrubbed(redacting_caplog):
    logger = logging.getLogger("tests.redaction")

    with redaction_scope(_redactor("tok-123")):
        try:
            raise ValueError("bad token tok-123")
        except ValueError:
            logger.exception("request failed")

    record = redacting_caplog.records[0]
    assert record.exc_info is None
    assert f"ValueError: bad token {REDACTED}" in record.exc_text
    assert "tok-123" not in redacting_caplog.text


def test_nested_scopes_all_apply(redacting_caplog):
    logger = logging.getLogger("tests.redaction")

    with redaction_scope(_redactor("outer-secret")), redaction_scope(_redactor("inner-secret")):
        assert len(current_redactors()) == 2
        logger.info("%s %s", "outer-secret", "inner-secret")

    assert redacting_caplog.records[0].getMessage() == f"{REDACTED} {REDACTED}"
    assert current_redactors() == ()


def test_log_with_bad_arguments_does_not_raise(redacting_caplog):
    logger = logging.getLogger("tests.redaction")

    with redaction_scope(_redactor("tok-123")):
        logger.info("tok-123 %s %s", "only one")

    assert redacting_caplog.records[0].getMessage() == f"{REDACTED} %s %s [log arguments dropped: they did not format]"


def test_log_filter_is_idempotent():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", ("tok-123",), None)
    log_filter = RedactingLogFilter()

    with redaction_scope(_redactor("tok-123")):
        assert log_filter.filter(record) is True
        assert log_filter.filter(record) is True

    assert record.getMessage() == f"a {REDACTED}"


def test_scrub_text_is_fast_with_20_secrets_on_64_kib():
    secrets = [f"secret-{index:02d}-{'x' * index}" for index in range(20)]
    redactor = _redactor(*secrets)
    text = " ".join(f"word{index} {secrets[index % 20]}" for index in range(2400))
    assert len(text) >= 64 * 1024
    redactor.scrub_text("warm up the compiled pattern")

    started = time.perf_counter()
    scrubbed = redactor.scrub_text(text)
    elapsed = time.perf_counter() - started

    assert "secret-" not in scrubbed
    assert scrubbed.count(REDACTED) == 2400
    # Generous: it takes a few milliseconds; this only catches a pathological (e.g. quadratic) regression.
    assert elapsed < 0.5


secrets_strategy = st.text(min_size=1, max_size=40)
surrounding = st.text(max_size=200)


@given(secret=secrets_strategy, before=surrounding, after=surrounding)
def test_scrubbed_text_never_contains_the_secret(secret, before, after):
    # Occurrences made of the marker's own characters (a secret such as "ACT") reveal nothing; replacing the
    # markers by a character the secret lacks makes the property exact.
    assume("\x00" not in secret)

    scrubbed = _redactor(secret).scrub_text(before + secret + after + secret)

    assert secret not in scrubbed.replace(REDACTED, "\x00")


marker_free_secrets = st.text(
    alphabet=st.characters(blacklist_characters="[REDACT]", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
)


@given(secrets=st.lists(marker_free_secrets, min_size=1, max_size=4), parts=st.lists(surrounding, min_size=1))
def test_scrubbed_text_never_contains_any_secret(secrets, parts):
    text = "".join(part + secrets[index % len(secrets)] for index, part in enumerate(parts))

    scrubbed = _redactor(*secrets).scrub_text(text)

    for secret in secrets:
        assert secret not in scrubbed
