"""Save a screenshot of each desk page, for the README and for review.

    python -m ivr.web.screenshots DIR [--url http://127.0.0.1:8090]
        [--supervisor supervisor01] [--counselor counselor01]

Against a running desk (``ivr-run``), in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, Selenium from the test extra; docs/chromium.md). The two accounts' desk
passwords are read from the environment (``IVR120_DESK_SUPERVISOR_PASSWORD``,
``IVR120_DESK_COUNSELOR_PASSWORD``) or asked for. Writes DIR/signin.png, signin-error.png,
home-counselor.png, desk-counselor.png (the counselor
screen), forbidden.png, wallboard.png; prints each path.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path


def _password(env: str, who: str) -> str:
    return os.environ.get(env) or getpass.getpass(f"{who} 데스크 비밀번호: ")


def take(out: Path, url: str, supervisor: str, sv_pw: str, counselor: str, c_pw: str) -> list[Path]:
    # Selenium is in the test extra; the module is imported only when screenshots are taken.
    from selenium.webdriver.common.by import By

    from ivr.web.browser import BrowserMissing, settled, sign_in, start_browser, submit

    try:
        browser = start_browser(1600, 1000, "--hide-scrollbars")
    except BrowserMissing as exc:
        raise SystemExit(f"screenshots: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def shot(name: str) -> None:
        path = out / f"{name}.png"
        browser.save_screenshot(str(path))
        saved.append(path)

    def signed_in() -> None:
        settled(browser).until(lambda b: b.find_elements(By.ID, "who"))

    def pages() -> None:
        browser.get(f"{url}/signin")
        shot("signin")
        sign_in(browser, url, supervisor, "wrong password, on purpose")
        settled(browser).until(lambda b: b.find_elements(By.ID, "error"))
        shot("signin-error")
        sign_in(browser, url, counselor, c_pw)
        signed_in()
        browser.get(f"{url}/")
        shot("home-counselor")
        browser.get(f"{url}/desk")
        settled(browser).until(
            lambda b: b.execute_script("return document.body.dataset.pushed") == "yes"
        )
        shot("desk-counselor")
        browser.get(f"{url}/wallboard")
        settled(browser).until(lambda b: b.find_elements(By.ID, "message"))
        shot("forbidden")
        submit(browser, "signout")
        settled(browser).until(lambda b: b.find_elements(By.ID, "notice"))
        sign_in(browser, url, supervisor, sv_pw)
        signed_in()
        browser.get(f"{url}/wallboard")
        # The first pushed board (the stream is live) before the picture.
        settled(browser).until(
            lambda b: b.execute_script("return document.body.dataset.pushed") == "yes"
        )
        shot("wallboard")

    try:
        pages()
    except Exception as exc:
        # Say where it stopped and keep what the browser showed (failed.png), so a failure in a
        # fresh clone can be read from its log alone.
        try:
            where = f"{browser.current_url} ({browser.title!r})"
            browser.save_screenshot(str(out / "failed.png"))
        except Exception:
            where = "(the browser did not answer)"
        done = ", ".join(p.stem for p in saved) or "none"
        traceback.print_exc()
        raise SystemExit(
            f"screenshots: stopped after {done} at {where}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    finally:
        browser.quit()
    return saved


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ivr.web.screenshots", description=__doc__)
    p.add_argument("dir", type=Path)
    p.add_argument("--url", default="http://127.0.0.1:8090")
    p.add_argument("--supervisor", default="supervisor01")
    p.add_argument("--counselor", default="counselor01")
    args = p.parse_args(argv)
    sv_pw = _password("IVR120_DESK_SUPERVISOR_PASSWORD", args.supervisor)
    c_pw = _password("IVR120_DESK_COUNSELOR_PASSWORD", args.counselor)
    url = args.url.rstrip("/")
    for path in take(args.dir, url, args.supervisor, sv_pw, args.counselor, c_pw):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
