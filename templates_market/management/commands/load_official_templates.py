import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from templates_market.official import OfficialTemplateError, load_official_templates, official_directory


class Command(BaseCommand):
    help = "Installs or updates the shipped official templates (by slug); safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--path",
            type=Path,
            default=None,
            help="Directory of template JSON files (default: settings.OFFICIAL_TEMPLATES_DIR, else the shipped set).",
        )

    def handle(self, *args, path: Path | None, **options):
        directory = path or official_directory()

        def progress(templates):
            return tqdm(templates, desc="Official templates", unit="template", disable=not sys.stderr.isatty())

        try:
            result = load_official_templates(directory, progress=progress)
        except OfficialTemplateError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Official templates from {directory}: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged."
        )
