"""Print reference pages without building the site: ``python scripts/docs_reference [config|cli|...]``.

With no argument every page is printed; a page is named by its file (``config``) or its path in the site
(``reference/config.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a directory: import the package by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from docs_reference import PAGES
else:  # python -m docs_reference
    from . import PAGES


def main(argv: list[str]) -> int:
    for uri in argv or list(PAGES):
        print(PAGES[uri if uri in PAGES else f"reference/{uri}.md"]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
