"""Serve the app: `streamlit run app.py` with any Streamlit flags, but with deep links working from the first request.

Why not plain `streamlit run app.py`: Streamlit 1.67 decides once per process, when the first session starts, whether
the app uses the legacy "pages folder" routing (a folder literally named `pages/` beside the entry script, see
streamlit/runtime/pages_manager.py, `PagesManager.uses_pages_directory`). Our pages live in `pages/`, so the process's
first script run goes through that legacy router (script_runner._mpa_v1), which knows only file-name URLs
(`catalog_page`, ...), answers a deep link such as /catalog with a "Page not found" dialog, and only then runs app.py,
whose `st.navigation` switches the legacy routing off for the rest of the process. No configuration option turns it
off up front, and nothing in app.py can run before that first session. This launcher states, before the server
starts, exactly what `st.navigation` itself states on its first call: this app routes with `st.navigation`.

Usage: .venv/bin/python scripts/serve.py [streamlit run flags, e.g. --server.port 8501]
A plain `streamlit run app.py` still works; only the very first visitor of each server process may see the dialog.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def declare_navigation_routing() -> None:
    """Switch Streamlit's legacy pages-folder routing off for this process (what st.navigation does on its first
    call). Raises RuntimeError when the Streamlit version no longer has that switch, so an upgrade is noticed."""
    from streamlit.runtime.pages_manager import PagesManager

    if not hasattr(PagesManager, "uses_pages_directory"):
        raise RuntimeError("this Streamlit has no PagesManager.uses_pages_directory: check scripts/serve.py")
    PagesManager.uses_pages_directory = False


def main(argv: list[str]) -> int:
    from streamlit.web import cli

    declare_navigation_routing()
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *argv]
    return cli.main(prog_name="streamlit")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
