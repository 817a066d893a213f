"""``report.md`` as an HTML page: CommonMark with tables (markdown-it-py), its images either
linked as written (a page next to ``report.md``) or inlined as data URIs (one self-contained
file: the page Snakemake's HTML report shows under "Report")."""

import base64
import mimetypes
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


def render(markdown: str, title: str, images: Path | None = None) -> str:
    """The HTML page of ``markdown`` (CommonMark and tables); with ``images``, the folder its
    image paths are relative to, every image is inlined as a data URI."""
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(markdown)
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
