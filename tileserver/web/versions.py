"""Published data versions and their ingest reports: what operators check after an ingest."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, jsonify

from tileserver.core.provenance import public_report
from tileserver.web import context

blueprint = Blueprint("versions", __name__)


@blueprint.get("/versions")
def versions():
    """Every published version, newest first, with its report (source URLs and file names, no paths)."""
    current = context.store().current()
    return jsonify(
        {
            "current": current.version.id if current else None,
            "versions": [{**asdict(v), "report": public_report(v.report)} for v in context.store().versions()],
        }
    )


@blueprint.get("/health")
def health():
    """200 when a version is being served, 503 otherwise (for load balancers)."""
    snap = context.snapshot()
    return jsonify({"status": "ok", "version": snap.version.id})
