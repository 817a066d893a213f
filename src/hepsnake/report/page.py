"""``report.md`` as an HTML page: CommonMark with tables (markdown-it-py), headings with
GitHub's anchors (``[Warnings](#warnings)`` works as on GitHub), its images either linked as
written (a page next to ``report.md``) or inlined as data URIs (one self-contained file: the
page Snakemake's HTML report shows under "Report")."""

import base64
import itertools
import mimetypes
import re
from pathlib import Path

from markdown_it import MarkdownIt

STYLE = (
    "body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left}"
    "img{max-width:100%}"
)


def data_uri(path: Path) -> str:
    """The file at ``path`` as a data URI (its type from its suffix)."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def anchor(heading: str, seen: dict[str, int]) -> str:
    """GitHub's id of a heading: lower case, punctuation dropped, spaces as hyphens, ``-1``,
    ``-2``, ... on repeats (``seen``: the ids so far)."""
    base = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
    count = seen.get(base, 0)
    seen[base] = count + 1
    return f"{base}-{count}" if count else base


def render(markdown: str, title: str, images: Path | None = None) -> str:
    """The HTML page of ``markdown`` (CommonMark and tables); with ``images``, the folder its
    image paths are relative to, every image is inlined as a data URI."""
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(markdown)
    seen: dict[str, int] = {}
    for token, content in itertools.pairwise(tokens):
        if token.type == "heading_open":
            token.attrSet("id", anchor(content.content, seen))
    if images is not None:
        for token in tokens:
            for child in token.children or []:
                if child.type == "image":
                    child.attrSet("src", data_uri(images / str(child.attrGet("src"))))
    body = md.renderer.render(tokens, md.options, {})
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n"
    )
