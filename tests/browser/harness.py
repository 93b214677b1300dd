"""What the browser tests and scripts/screenshot_demo.py share: start JupyterLab or Voila on a free
local port (offline, no token, no browser of its own), launch the system Chromium through Playwright,
and drive the SoupWidget's sliders with the mouse.

Nothing here downloads anything: Playwright uses Debian's /usr/bin/chromium (its own browser download
cannot work offline), and every request the page makes to anything but 127.0.0.1 is aborted and
counted (`blocked`), so a page that needs the network fails the same way on every machine.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("RLPHF_CHROMIUM", "/usr/bin/chromium"))      # Debian's; another one by this variable
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SKIP_LINE = ("browser tests skipped: install chromium (apt-get install chromium) and playwright "
             "(make setup), then run make test-browser")
DEMO_NOTEBOOK = ROOT / "notebooks" / "app" / "soup_demo.ipynb"

# The SoupWidget, as the browser sees it (ipywidgets 8 DOM). Its answer is an HTML widget whose
# content is one pre-wrapped <div> (widgets.answer_html); its status is a <small> (widgets._show_status).
ANSWER = ".widget-html-content > div[style*='pre-wrap']"
STATUS = ".widget-html-content > small"


def missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(**extra) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Server:
    """A child process serving HTTP on 127.0.0.1:port; its output goes to `log`."""

    def __init__(self, cmd: list[str], port: int, log: Path, *, env: dict, cwd: Path, ready_path: str | None = "/",
                 timeout: float = 180.0):
        self.port, self.log, self.url = port, log, f"http://127.0.0.1:{port}"
        self._log_file = open(log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if ready_path is None:          # only the port: a GET of Voila's page would run the notebook
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    return
                with urllib.request.urlopen(self.url + ready_path, timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.time() > deadline:
                self.stop()
                raise TimeoutError(f"{cmd[0]} did not answer on {self.url} in {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.5)

    def tail(self, n: int = 40) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        """Stop the server and its kernels (its own process group: it was started in a new session)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, 9)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self._log_file.close()


def lab_settings(settings_dir: Path) -> None:
    """User settings for a quiet, test-friendly JupyterLab: every cell in the DOM (no windowing),
    no news or update checks, no extension manager (it would ask PyPI)."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                           "checkForUpdates": False},
        "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
    }
    for name, value in files.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def start_lab(root_dir: Path, work: Path, **env) -> Server:
    """JupyterLab on `root_dir` (a temporary copy: the repo's notebooks are never saved over)."""
    port = free_port()
    lab_settings(work / "lab-settings")
    cmd = [str(BIN / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root_dir}",
           "--ServerApp.port_retries=0", "--LabApp.news_url=", "--allow-root"]
    env = server_env(JUPYTERLAB_SETTINGS_DIR=work / "lab-settings", JUPYTERLAB_WORKSPACES_DIR=work / "lab-workspaces",
                     JUPYTER_RUNTIME_DIR=work / "runtime", **env)
    return Server(cmd, port, work / "jupyterlab.log", env=env, cwd=root_dir, ready_path="/api/status")


def voila_command(notebook: Path, port: int) -> list[str]:
    return [str(BIN / "voila"), str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0"]


def start_voila(work: Path, notebook: Path = DEMO_NOTEBOOK, **env) -> Server:
    """Voila serving the demo notebook. Its page appears when the notebook has run (about a minute)."""
    port = free_port()
    env = server_env(JUPYTER_RUNTIME_DIR=work / "runtime", **env)
    return Server(voila_command(notebook, port), port, work / "voila.log", env=env, cwd=notebook.parent,
                  ready_path=None)


@contextmanager
def chromium(viewport=(1200, 900)):
    """A fresh headless Chromium page; non-local requests are aborted and listed in page.blocked."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = context.new_page()
            page.blocked = []

            def route(r):
                url = r.request.url
                if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
                    r.continue_()
                else:
                    page.blocked.append(url)
                    r.abort()

            page.route("**/*", route)
            yield page
        finally:
            browser.close()


# ---- the SoupWidget in the page ------------------------------------------------------------

def slider(page, description: str):
    """The FloatSlider whose label reads `description` (e.g. "informativeness")."""
    return page.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text=description)).first


def drag_slider(page, description: str, fraction: float, tries: int = 3) -> str:
    """Drag the slider's handle with the mouse to `fraction` (0..1) of its track, in small steps like a
    hand does; returns the slider's readout afterwards. The slider is scrolled into view first (a
    mouse outside the viewport hits nothing); a drag that did not move it (the page scrolled under
    the mouse) is tried again."""
    s = slider(page, description)
    readout = s.locator(".widget-readout")
    before = readout.inner_text().strip()
    for _ in range(tries):
        s.scroll_into_view_if_needed()
        page.wait_for_timeout(300)                       # let the layout settle after the scroll
        handle, track = s.locator(".noUi-handle"), s.locator(".noUi-target")
        h, t = handle.bounding_box(), track.bounding_box()
        y = h["y"] + h["height"] / 2
        page.mouse.move(h["x"] + h["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(t["x"] + fraction * t["width"], y, steps=12)
        page.mouse.up()
        after = readout.inner_text().strip()
        if after != before:
            return after
    return after


def answer_text(page) -> str:
    return page.locator(ANSWER).first.inner_text()


def status_text(page) -> str:
    return page.locator(STATUS).first.inner_text()


def wait_for_status(page, predicate, timeout_s: float, what: str) -> str:
    """Poll the widget's status line until predicate(text) holds."""
    deadline = time.time() + timeout_s
    text = ""
    while time.time() < deadline:
        loc = page.locator(STATUS)
        if loc.count():
            text = loc.first.inner_text()
            if predicate(text):
                return text
        page.wait_for_timeout(200)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}; status is {text!r}")


RECORD_ANSWER_JS = """
(sel) => {
  window.__answerLengths = [];
  const el = () => document.querySelector(sel);
  window.__answerTimer = setInterval(() => {
    const e = el(); const n = e ? e.innerText.length : -1;
    const a = window.__answerLengths;
    if (!a.length || a[a.length - 1] !== n) a.push(n);
  }, 20);
}
"""


def record_answer_lengths(page) -> None:
    """From now on, the page notes every change of the answer's length (every 20 ms)."""
    page.evaluate(RECORD_ANSWER_JS, ANSWER)


def answer_lengths(page) -> list[int]:
    return page.evaluate("() => { clearInterval(window.__answerTimer); return window.__answerLengths; }")


def copy_notebook(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, dst_dir / src.name))
