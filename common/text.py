"""Text helpers shared by every page: one escaper for user text shown through Markdown."""

from __future__ import annotations

import string

_MARKDOWN_PUNCTUATION = frozenset(string.punctuation)


def escape_markdown(text: object) -> str:
    """User text made inert for st.markdown/st.error/st.warning: one line, every ASCII punctuation mark escaped.

    CommonMark lets a backslash escape any ASCII punctuation, so no link, emphasis, heading, list, HTML tag,
    LaTeX ($) or Streamlit colour/emoji directive (:red[...]) in the text survives; it shows as typed.
    """
    flat = " ".join(str(text).split())
    return "".join("\\" + c if c in _MARKDOWN_PUNCTUATION else c for c in flat)
