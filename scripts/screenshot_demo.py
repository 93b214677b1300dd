"""Screenshot of the demo page for the README: start Voila on notebooks/app/soup_demo.ipynb (offline,
free local port), open it in Chromium through Playwright, drag the informativeness slider to
"concise" and the style slider to "friendly" with the mouse, wait for the answer, save the PNG.

    .venv/bin/python scripts/screenshot_demo.py            # -> docs/img/soup_demo.png (full answers, ~2-4 min)
    .venv/bin/python scripts/screenshot_demo.py --quick    # 24-token answers (RLPHF_QUICK=1)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

import harness as H  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "soup_demo.png")
    parser.add_argument("--quick", action="store_true", help="short answers (RLPHF_QUICK=1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for each answer")
    args = parser.parse_args()
    if H.missing():
        sys.exit(f"cannot take the screenshot: {H.missing()} (apt-get install chromium; make setup)")

    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        server = H.start_voila(Path(tmp), **({"RLPHF_QUICK": 1} if args.quick else {}))
        try:
            with H.chromium(viewport=(1000, 830)) as page:
                page.goto(server.url + "/", timeout=args.timeout * 1000)
                H.slider(page, "style").wait_for(timeout=args.timeout * 1000)
                H.wait_for_status(page, lambda s: s.startswith("weights:"), args.timeout, "the first answer")
                print(f"first answer after {time.time() - start:.0f} s: {H.answer_text(page)!r}")
                H.drag_slider(page, "informativeness", 0.0)       # concise (P2A)
                H.drag_slider(page, "style", 0.0)                 # friendly (P3A)
                status = H.wait_for_status(page, lambda s: "P2A 0.33" in s and "P3A 0.33" in s, args.timeout,
                                           "the answer after the drags")
                print(f"after the drags ({time.time() - start:.0f} s): {status}\n{H.answer_text(page)!r}")
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                if page.blocked:
                    print("requests that were not allowed to leave 127.0.0.1:", *page.blocked, sep="\n  ")
        finally:
            server.stop()
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
