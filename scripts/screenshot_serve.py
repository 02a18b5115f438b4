"""The README's picture of the browser screen: `rater serve` on the demo set, one teacher's link, headless
Chromium (Debian's package). Run: .venv/bin/python scripts/screenshot_serve.py [docs/serve.png]"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_serve import CHROMIUM, FLAGS, Screen, Served, first_question, rater  # noqa: E402


def main() -> None:
    from playwright.sync_api import sync_playwright

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "serve.png")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        db = Path(tmp) / "school.db"
        rater(db, "demo")
        server = Served(db)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            screen = Screen(browser, server.link("anna"))
            screen.wait_for(first_question(db))
            screen.press("1", "3")
            screen.page.wait_for_timeout(1000)
            screen.page.screenshot(path=str(out))
        finally:
            browser.close()
            server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
