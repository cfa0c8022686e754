"""The ingest report: per dataset, rows read, loaded and rejected, each rejection with file, line, reason.

`read == loaded + rejected` always holds, because rows are only ever counted through `load` and
`reject`; the report is printed at the end of a run and published with the version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tileserver.core.provenance import source_name

MAX_LISTED = 1000  # rejections kept per dataset; the count stays exact beyond it


@dataclass(frozen=True)
class Rejection:
    """A row left out, and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class DatasetReport:
    """Counts for one dataset (one source file)."""

    name: str
    file: str
    loaded: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def read(self) -> int:
        return self.loaded + self.rejected

    def load(self, n: int = 1) -> None:
        """Count n rows as loaded."""
        self.loaded += n

    def reject(self, line: int, reason: str) -> None:
        """Count one row as rejected, keeping its line and reason."""
        self.rejected += 1
        if len(self.rejections) < MAX_LISTED:
            self.rejections.append(Rejection(self.file, line, reason))

    def unload(self, line: int, reason: str) -> None:
        """Turn a row counted as loaded into a rejection (found out later, e.g. a duplicate)."""
        self.loaded -= 1
        self.reject(line, reason)

    def note(self, text: str) -> None:
        """Keep a remark about the dataset as a whole (a repaired geometry, a derived layer)."""
        self.notes.append(text)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "file": self.file,
            "read": self.read,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "rejections": [{"file": r.file, "line": r.line, "reason": r.reason} for r in self.rejections],
            "notes": list(self.notes),
        }


@dataclass
class Report:
    """Every dataset of one ingest run."""

    datasets: dict[str, DatasetReport] = field(default_factory=dict)
    missing: list[dict] = field(default_factory=list)  # indicators lost: id, main, reason
    fingerprint: str = ""  # what the run read (`ingest.manifest.fingerprint`): `--if-changed` compares it

    @property
    def partial(self) -> bool:
        """Whether some indicator of the catalogue could not be read (its source or a column is missing)."""
        return bool(self.missing)

    def lost_main(self) -> list[str]:
        """The `main` indicators lost: a run that loses one does not publish unless told to."""
        return [m["id"] for m in self.missing if m["main"]]

    def lose(self, indicators: Sequence[Any], reason: str) -> None:
        """Record indicators whose source could not be used, and why."""
        self.missing.extend({"id": i.id, "main": i.main, "reason": reason} for i in indicators)

    def dataset(self, name: str, file: str) -> DatasetReport:
        """The report of a dataset, created on first use; `file` is kept as its URL or bare name (it is public)."""
        if name not in self.datasets:
            self.datasets[name] = DatasetReport(name, source_name(file))
        return self.datasets[name]

    def to_dict(self) -> dict:
        return {"datasets": [d.to_dict() for d in self.datasets.values()], "partial": self.partial,
                "missing": list(self.missing), "fingerprint": self.fingerprint}

    def summary(self, show: int = 5) -> str:
        """A human-readable table, with the first rejections of each dataset."""
        lines = [f"{'dataset':<28}{'read':>9}{'loaded':>9}{'rejected':>9}"]
        for d in self.datasets.values():
            lines.append(f"{d.name:<28}{d.read:>9}{d.loaded:>9}{d.rejected:>9}")
            lines.extend(f"    {r}" for r in d.rejections[:show])
            if d.rejected > show:
                lines.append(f"    ... and {d.rejected - show} more (see the report in the store)")
            lines.extend(f"    note: {n}" for n in d.notes)
        lines.extend(f"MISSING indicator {m['id']}{' (main)' if m['main'] else ''}: {m['reason']}"
                     for m in self.missing)
        return "\n".join(lines)
