"""Compiled XPath building blocks shared by the page parsers."""

from __future__ import annotations

from lxml import etree

X = etree.XPath


def has_class(name: str) -> str:
    """XPath test for a class name; the cheap ``contains`` first spares most elements the rest."""
    return (
        f"(contains(@class, '{name}') and "
        f"contains(concat(' ', normalize-space(@class), ' '), ' {name} '))"
    )
