"""The shipped official templates and `manage.py load_official_templates` (docs/operations.md)."""

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from connectors.models import Connector
from templates_market import services
from templates_market.models import ConnectorTemplate
from templates_market.official import (
    DEFAULT_DIRECTORY,
    OfficialTemplateError,
    read_official_template,
    read_official_templates,
)

OFFICIAL_FILES = sorted(DEFAULT_DIRECTORY.glob("*.json"))


def load(*args) -> str:
    out = StringIO()
    call_command("load_official_templates", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def official_copy(tmp_path) -> Path:
    """A copy of the shipped files to change."""
    directory = tmp_path / "official"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    return directory


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_official_templates_are_shipped():
    assert len(OFFICIAL_FILES) >= 1


def test_loading_creates_public_official_templates(db):
    output = load()

    count = len(OFFICIAL_FILES)
    assert output.strip().endswith(f"{count} created, 0 updated, 0 unchanged.")
    assert ConnectorTemplate.objects.count() == count
    assert ConnectorTemplate.objects.filter(is_official=True, is_public=True, version=1).count() == count


def test_loading_twice_changes_nothing(db):
    load()
    before = {t.slug: (t.pk, t.version, t.updated_at) for t in ConnectorTemplate.objects.all()}

    output = load()

    assert output.strip().endswith(f"0 created, 0 updated, {len(OFFICIAL_FILES)} unchanged.")
    after = {t.slug: (t.pk, t.version, t.updated_at) for t in ConnectorTemplate.objects.all()}
    assert after == before


def test_changing_a_files_definition_bumps_that_templates_version(db, official_copy):
    load("--path", str(official_copy))
    changed = OFFICIAL_FILES[0].name

    edit(official_copy / changed, lambda data: data["definition"].update(max_duration_seconds=42))
    output = load("--path", str(official_copy))

    assert output.strip().endswith(f"0 created, 1 updated, {len(OFFICIAL_FILES) - 1} unchanged.")
    versions = dict(ConnectorTemplate.objects.values_list("slug", "version"))
    slug = json.loads((official_copy / changed).read_text())["slug"]
    assert versions.pop(slug) == 2
    assert set(versions.values()) == {1}
    assert ConnectorTemplate.objects.get(slug=slug).definition["max_duration_seconds"] == 42


def test_changing_required_credentials_bumps_the_version(db, official_copy):
    load("--path", str(official_copy))
    path = official_copy / OFFICIAL_FILES[0].name

    edit(path, lambda data: data["required_credentials"].append({"service_name": "extra", "fields": ["key"]}))
    load("--path", str(official_copy))

    assert ConnectorTemplate.objects.get(slug=json.loads(path.read_text())["slug"]).version == 2


def test_changing_only_the_description_updates_without_a_new_version(db, official_copy):
    load("--path", str(official_copy))
    path = official_copy / OFFICIAL_FILES[0].name

    edit(path, lambda data: data.update(description="Reworded"))
    output = load("--path", str(official_copy))

    assert "0 created, 1 updated" in output
    template = ConnectorTemplate.objects.get(slug=json.loads(path.read_text())["slug"])
    assert (template.description, template.version) == ("Reworded", 1)


def test_the_directory_comes_from_settings(db, settings, official_copy):
    for path in list(official_copy.glob("*.json"))[1:]:
        path.unlink()
    settings.OFFICIAL_TEMPLATES_DIR = official_copy

    output = load()

    assert "1 created" in output
    assert ConnectorTemplate.objects.count() == 1


def test_loading_keeps_staffs_featured_choice_and_republishes(db):
    load()
    slug = ConnectorTemplate.objects.first().slug
    ConnectorTemplate.objects.filter(slug=slug).update(is_featured=True, is_public=False)

    load()

    template = ConnectorTemplate.objects.get(slug=slug)
    assert (template.is_featured, template.is_public, template.is_official) == (True, True, True)
    assert template.version == 1


def test_a_broken_file_is_an_error_naming_file_and_field_and_nothing_is_written(db, official_copy):
    broken = official_copy / OFFICIAL_FILES[-1].name

    def break_second_step_url(data):
        data["definition"]["steps"].append({"name": "zz_extra", "url": "ftp://example.com"})

    edit(broken, break_second_step_url)
    index = len(json.loads(broken.read_text())["definition"]["steps"]) - 1

    with pytest.raises(CommandError) as raised:
        load("--path", str(official_copy))

    message = str(raised.value)
    assert message.startswith(f"{broken.name}: definition.steps[{index}].url: ")
    assert "http:// or https://" in message
    assert not ConnectorTemplate.objects.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not readable JSON"),
        ("[]", "must hold a JSON object"),
        ('{"name": "x"}', "slug: This field is required."),
        ('{"slug": "x", "name": "x", "definition": {"steps": []}, "colour": 1}', "colour: Unknown field."),
    ],
)
def test_malformed_files_are_errors_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(content)

    with pytest.raises(OfficialTemplateError, match=expected) as raised:
        read_official_template(path)

    assert str(raised.value).startswith("bad.json: ")


def test_two_files_with_the_same_slug_are_an_error(official_copy):
    first = OFFICIAL_FILES[0].name
    shutil.copy(official_copy / first, official_copy / "zz-copy.json")

    with pytest.raises(OfficialTemplateError, match=r"zz-copy\.json: slug .* is also used by"):
        read_official_templates(official_copy)


def test_missing_directory_is_an_error(db, tmp_path):
    with pytest.raises(CommandError, match="not a directory"):
        load("--path", str(tmp_path / "nowhere"))


@pytest.mark.parametrize("path", OFFICIAL_FILES, ids=[path.stem for path in OFFICIAL_FILES])
def test_every_official_file_validates_and_installs(acme, path):
    official = read_official_template(path)
    raw = json.loads(path.read_text())
    assert official.slug == raw["slug"] == path.stem
    assert set(raw["sample"]) >= {"input", "credentials", "responses", "expect_requests", "expect_output"}
    required = {item["service_name"] for item in raw["required_credentials"]}
    assert set(raw["sample"]["credentials"]) == required

    load()
    template = ConnectorTemplate.objects.get(slug=official.slug)
    connector, missing = services.template_install(template=template, workspace=acme)

    assert connector.definition == template.definition == official.data["definition"]
    assert connector.template_version == 1
    assert missing == [item["service_name"] for item in raw["required_credentials"]]
    assert Connector.objects.get(pk=connector.pk).name == raw["name"]
