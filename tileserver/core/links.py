"""OGC link objects: the one builder every document (collections, tilesets, rasters, styles) uses."""

from __future__ import annotations


def link(href: str, rel: str, media: str, title: str = "") -> dict[str, str]:
    """One link object; `title` only when there is one.

    >>> link("/a", "self", "application/json", "A")
    {'href': '/a', 'rel': 'self', 'type': 'application/json', 'title': 'A'}
    >>> link("/a", "alternate", "text/html")
    {'href': '/a', 'rel': 'alternate', 'type': 'text/html'}
    """
    found = {"href": href, "rel": rel, "type": str(media)}
    return {**found, "title": title} if title else found
