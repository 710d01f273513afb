"""Import public postmortems (JSON Lines, as in shared/data/public-postmortems) as published incidents."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from postmortems.importing import RecordError, archive_owner, import_record, parse_record


class Command(BaseCommand):
    help = (
        "Import postmortems from JSON Lines files as published incidents. Safe to run again: a record whose "
        "url was imported before is skipped. A bad line is reported with its number and skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE.jsonl")
        parser.add_argument(
            "--owner",
            metavar="USER",
            help="Username that owns the imported incidents (default: the “public-archive” user).",
        )

    def handle(self, *args, files: list[Path], owner: str | None, **options):
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        if owner:
            try:
                owner_user = User.objects.get(username=owner)
            except User.DoesNotExist:
                raise CommandError(f"No user named {owner!r}; create it or leave out --owner.") from None
        else:
            owner_user = archive_owner()
        totals = {"created": 0, "skipped": 0, "failed": 0}
        for path in files:
            counts = self.import_file(path, owner_user)
            for key, value in counts.items():
                totals[key] += value
        self.stdout.write(
            self.style.SUCCESS(
                "{created} created, {skipped} skipped (already imported), {failed} failed.".format(**totals)
            )
        )

    def import_file(self, path: Path, owner) -> dict[str, int]:
        counts = {"created": 0, "skipped": 0, "failed": 0}
        lines = path.read_text(encoding="utf-8").splitlines()
        total = len(lines)
        progress = Progress(self.stderr, path.name, total)
        for number, line in enumerate(lines, start=1):
            progress.update(number)
            if not line.strip():
                continue
            try:
                record = parse_record(line)
            except RecordError as exc:
                counts["failed"] += 1
                progress.clear()
                self.stderr.write(f"{path}:{number}: skipped, {exc}", style_func=self.style.WARNING)
                continue
            _, created = import_record(record, owner=owner)
            counts["created" if created else "skipped"] += 1
        progress.done()
        self.stdout.write(
            "{name}: {created} created, {skipped} skipped, {failed} failed.".format(name=path.name, **counts)
        )
        return counts


class Progress:
    """A one-line progress bar on a terminal; silent when output goes to a file or a pipe."""

    width = 30

    def __init__(self, stream, label: str, total: int):
        self.stream, self.label, self.total = stream, label, max(total, 1)
        self.enabled = stream.isatty()
        self.shown = False

    def update(self, current: int) -> None:
        if not self.enabled:
            return
        filled = self.width * current // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {current}/{self.total}", style_func=str, ending="")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\r\x1b[2K", style_func=str, ending="")
            self.shown = False

    def done(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("", style_func=str)
