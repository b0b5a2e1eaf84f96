"""Check a built HTML site the way a reader would notice its defects.

No browser runs in CI, so this reads the pages instead: every image a page shows
exists in the build, no Markdown table was left unparsed (a ``|---|`` row in the text),
no cell printed a traceback, and no executed output holds ``nan`` where a number
belongs. ``python docs/_scripts/check_html.py BUILD_DIR`` exits 1 with one line per
defect.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path


def check(site: Path) -> list[str]:
    problems = []
    for page in sorted(site.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        for src in re.findall(r'<img[^>]+src="([^"]+)"', text):
            if not src.startswith(("http:", "https:", "data:")) and not (
                    page.parent / src).exists():
                problems.append(f"{page.name}: image {src} is missing from the build")
        body = html.unescape(re.sub(r"<[^>]+>", "", text))
        if re.search(r"\|\s*-{3,}\s*\|", body):
            problems.append(f"{page.name}: a Markdown table was not rendered")
        if "Traceback (most recent call last)" in body:
            problems.append(f"{page.name}: an executed cell printed a traceback")
        for out in re.findall(r'<div class="cell_output[^"]*"[^>]*>(.*?)</div>\s*</div>',
                              text, flags=re.S):
            if re.search(r"\bnan\b", html.unescape(re.sub(r"<[^>]+>", "", out))):
                problems.append(f"{page.name}: an executed output shows nan")
    return problems


def main() -> int:
    site = Path(sys.argv[1])
    problems = check(site)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
