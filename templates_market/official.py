"""The official templates shipped with the product, one JSON file each in `templates_market/official/`.

A file holds `{slug, name, description, category, tags, required_credentials, docs_url, definition, sample}`.
Loading validates every file first, with the same serializer as the staff API (so the definition goes through
the connector validator), and only then writes, in one transaction: a broken file changes nothing and the
error names the file and the field. Templates are matched by slug, so loading again never duplicates; a
template whose content did not change is left untouched, and `version` goes up only when its definition or
required credentials changed (the same rule as staff edits). `docs_url` and `sample` are documentation and
test data; they are not stored.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from templates_market import services
from templates_market.models import ConnectorTemplate
from templates_market.serializers import ConnectorTemplateSerializer, error_paths

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "official"
# Keys of a file that are not template fields.
DOCUMENTATION_KEYS = frozenset({"docs_url", "sample"})
STORED_FIELDS = ("name", "description", "category", "tags", "definition", "required_credentials")


class OfficialTemplateError(Exception):
    """A file that cannot be loaded; the message names the file and what is wrong."""


@dataclass(frozen=True)
class OfficialTemplate:
    path: Path
    slug: str
    data: dict[str, Any]


@dataclass
class LoadResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def official_directory() -> Path:
    """`settings.OFFICIAL_TEMPLATES_DIR` when set (tests, deployments with their own set), else the shipped
    directory."""
    return Path(getattr(settings, "OFFICIAL_TEMPLATES_DIR", None) or DEFAULT_DIRECTORY)


def official_files(directory: Path | None = None) -> list[Path]:
    directory = Path(directory or official_directory())
    if not directory.is_dir():
        raise OfficialTemplateError(f"{directory}: not a directory.")
    return sorted(directory.glob("*.json"))


def read_official_template(path: Path) -> OfficialTemplate:
    """Parses and validates one file. Raises OfficialTemplateError naming the file and the offending field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OfficialTemplateError(f"{path.name}: not readable JSON: {error}") from None
    if not isinstance(raw, dict):
        raise OfficialTemplateError(f"{path.name}: must hold a JSON object.")
    if not raw.get("slug"):
        raise OfficialTemplateError(f"{path.name}: slug: This field is required.")
    fields = {key: value for key, value in raw.items() if key not in DOCUMENTATION_KEYS}
    unknown = sorted(set(fields) - {"slug", *STORED_FIELDS})
    if unknown:
        raise OfficialTemplateError(f"{path.name}: {unknown[0]}: Unknown field.")
    # Uniqueness of the slug is the loader's business (it updates by slug), so validate as if new.
    serializer = ConnectorTemplateSerializer(data=fields)
    serializer.fields["slug"].validators = []
    if not serializer.is_valid():
        problems = "; ".join(f"{where}: {message}" for where, message in error_paths(serializer.errors))
        raise OfficialTemplateError(f"{path.name}: {problems}")
    data = {name: serializer.validated_data[name] for name in STORED_FIELDS}
    return OfficialTemplate(path=path, slug=serializer.validated_data["slug"], data=data)


def read_official_templates(directory: Path | None = None) -> list[OfficialTemplate]:
    """Every official template file, validated. Raises OfficialTemplateError on the first bad file or on two
    files with the same slug."""
    found: dict[str, OfficialTemplate] = {}
    for path in official_files(directory):
        template = read_official_template(path)
        if template.slug in found:
            raise OfficialTemplateError(
                f"{path.name}: slug {template.slug!r} is also used by {found[template.slug].path.name}."
            )
        found[template.slug] = template
    return list(found.values())


@transaction.atomic
def load_official_templates(
    directory: Path | None = None,
    *,
    progress: Callable[[Iterable[OfficialTemplate]], Iterable[OfficialTemplate]] | None = None,
) -> LoadResult:
    """Creates or updates every official template by slug; idempotent.

    Every file is validated before anything is written. Official templates are public and official; whether
    one is featured stays the staff's choice. Raises OfficialTemplateError for a bad file.
    """
    templates = read_official_templates(directory)
    existing = {
        template.slug: template
        for template in ConnectorTemplate.objects.select_for_update().filter(slug__in=[t.slug for t in templates])
    }
    result = LoadResult()
    for official in progress(templates) if progress else templates:
        data = {**official.data, "is_official": True, "is_public": True}
        current = existing.get(official.slug)
        if current is None:
            services.template_create(data={**data, "slug": official.slug})
            result.created += 1
        elif any(getattr(current, name) != value for name, value in data.items()):
            services.template_update(template=current, data=data)
            result.updated += 1
        else:
            result.unchanged += 1
    return result
