"""`detect --report`, `--input` and `--output` on real videos: a face, none, a broken file.

The pages are read back as HTML (every image and link resolves, names show as they are,
the figures are --json's) and, where Chromium can run, rendered by a real browser."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.media import lavfi_video
from detection.detect import detect

# a name a careless page would turn into markup or a broken attribute
ODD_NAME = "clip <b>\"quoted\" & 'single'.mp4"
FAST = ["--min-frames-per-video", "3", "--max-keyframes-per-video", "3"]


class _Page(HTMLParser):
    """Image sources, link targets, each element's text by class, and rows' data-pfake."""

    def __init__(self) -> None:
        super().__init__()
        self.srcs, self.hrefs, self.link_texts, self.pfakes, self.verdicts = [], [], [], [], []
        self._in_link = self._in_verdict = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a["src"])
        if tag == "a":
            self.hrefs.append(a["href"])
            self._in_link = True
        if "data-pfake" in a:
            self.pfakes.append(a["data-pfake"])
        self._in_verdict = tag == "span" and "v " in a.get("class", "")

    def handle_endtag(self, tag):
        self._in_link = self._in_link and tag != "a"

    def handle_data(self, data):
        if self._in_link:
            self.link_texts.append(data)
        if self._in_verdict:
            self.verdicts.append(data)
            self._in_verdict = False


def _parse(path):
    page = _Page()
    with open(path, encoding="utf-8") as f:
        page.feed(f.read())
    return page


@pytest.fixture(scope="module")
def inputs(demo_set, tmp_path_factory):
    """A face video under a name full of markup, a test pattern (no face), a truncated file."""
    root = tmp_path_factory.mktemp("inputs")
    face = next(v.path for v in demo_set[1] if v.label == "fake" and "astronaut" in v.path)
    odd = root / ODD_NAME
    shutil.copy(face, odd)
    broken = root / "broken.mp4"
    broken.write_bytes(open(face, "rb").read()[:3000])
    return [str(odd), lavfi_video(str(root / "pattern.mp4"), seconds=1.0), str(broken)]


@pytest.fixture(scope="module")
def report(tiny_checkpoint, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    res = CliRunner().invoke(detect, [*inputs, "--checkpoint", tiny_checkpoint, "--json", "--report", str(out), *FAST])
    assert res.exit_code == 0, res.output
    return str(out), [json.loads(line) for line in res.stdout.splitlines()]


def test_report_pages_show_every_input_with_its_figures_and_resolving_images(report, inputs):
    out, judged = report
    assert [j["verdict"] for j in judged][1:] == ["no usable face", "unreadable"]
    assert judged[0]["verdict"] in ("likely fake", "likely real") and len(judged[0]["keyframes"]) == 3
    pages = ["index.html", "v0001.html", "v0002.html", "v0003.html"]
    assert sorted(f for f in os.listdir(out) if f.endswith(".html")) == pages
    for name in pages:
        page = _parse(os.path.join(out, name))
        for ref in page.srcs + page.hrefs:
            assert "://" not in ref and os.path.isfile(os.path.join(out, ref)), (name, ref)
    index = _parse(os.path.join(out, "index.html"))
    assert index.link_texts == inputs  # names shown as they are, in input order
    assert index.verdicts == [j["verdict"] for j in judged]
    assert index.pfakes == [repr(judged[0]["fake_probability"]), "", ""]
    assert len(index.srcs) == 2  # thumbnails: the face video's frame and the pattern's; none for the broken file
    with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
        assert "<b>" not in f.read().replace("<b>likely fake</b>", "")
    face_page = _parse(os.path.join(out, "v0001.html"))
    assert sorted(float(p) for p in face_page.pfakes) == sorted(k["fake_probability"] for k in judged[0]["keyframes"])
    assert sum("noise" in s for s in face_page.srcs) == 6 and any(s.endswith("pfake.png") for s in face_page.srcs)
    with open(os.path.join(out, "v0003.html"), encoding="utf-8") as f:
        broken = f.read()
    assert "decode_error" in broken and judged[2]["reason"].split(":")[0] in broken


def _chromium():
    for exe in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(exe)
        if path:
            return path
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")


def _browser(exe, profile, *args):
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.skip("chromium did not finish within 90 s")


# appended to a copy of a page beside it (so relative paths resolve the same): after load,
# each image says whether it decoded, for --dump-dom to show
_MARK_IMAGES = ("<script>window.addEventListener('load', function () { Array.prototype.forEach.call(document.images, "
                "function (i) { i.setAttribute('data-loaded', i.complete && i.naturalWidth > 0 ? 'yes' : 'no'); }); "
                "document.body.setAttribute('data-checked', document.images.length); });</script>")


@pytest.mark.parametrize("name", ["index.html", "v0001.html"])
def test_chromium_renders_the_pages_with_every_image(report, name, tmp_path):
    exe = _chromium()
    out, _ = report
    shot = tmp_path / "page.png"
    res = _browser(exe, tmp_path / "profile", "--window-size=1200,900", f"--screenshot={shot}", f"file://{out}/{name}")
    if not shot.exists():
        pytest.skip(f"chromium could not run here: {res.stderr.strip().splitlines()[-1:] or res.returncode}")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text and pictures, not a blank page
    checked = os.path.join(out, f"checked-{name}")
    with open(os.path.join(out, name), encoding="utf-8") as f:
        html = f.read()
    with open(checked, "w", encoding="utf-8") as f:
        f.write(html.replace("</body>", _MARK_IMAGES + "</body>"))
    try:
        dom = _browser(exe, tmp_path / "profile2", "--virtual-time-budget=5000", "--dump-dom", f"file://{checked}").stdout
    finally:
        os.remove(checked)
    assert 'data-checked="' in dom and 'data-checked="0"' not in dom
    assert 'data-loaded="no"' not in dom and dom.count('data-loaded="yes"') == html.count("<img ")


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_folder_with_a_broken_file_in_the_middle_gives_every_row(tiny_checkpoint, inputs, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name, src in (("a-face.mp4", inputs[0]), ("b-broken.mp4", inputs[2]), ("c-pattern.mp4", inputs[1])):
        shutil.copy(src, folder / name)
    (folder / "notes.txt").write_text("not a video")
    results = tmp_path / "out" / "results.csv"
    res = CliRunner(env={"NOISETRACE_PROGRESS_S": "0"}).invoke(
        detect, ["--input", str(folder), "--checkpoint", tiny_checkpoint, "--output", str(results), *FAST])
    assert res.exit_code == 0, res.output
    rows = _rows(results)
    assert [r["video"] for r in rows] == ["a-face.mp4", "b-broken.mp4", "c-pattern.mp4"]
    assert [r["verdict"] for r in rows][1:] == ["unreadable", "no usable face"]
    assert rows[0]["verdict"] in ("likely fake", "likely real") and 0 <= float(rows[0]["p_fake"]) <= 1
    assert rows[0]["frames"] == "3" and rows[1]["p_fake"] == "" and rows[1]["reason"].startswith("decode_error")
    assert len({r["threshold"] for r in rows}) == 1
    progress = [line for line in res.stderr.splitlines() if line.startswith("videos ")]
    assert progress[0].startswith("videos 0/3") and "ETA" in progress[1] and progress[-1].startswith("videos 3/3 100%")
    assert progress[-1].split(" | ")[-2] == "done"


def test_a_manifest_without_labels_keeps_its_order(tiny_checkpoint, inputs, tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"path\n{inputs[1]}\n{inputs[2]}\n")
    results = tmp_path / "results.csv"
    res = CliRunner().invoke(detect, ["--input", str(manifest), "--checkpoint", tiny_checkpoint, "--output", str(results), *FAST])
    assert res.exit_code == 0, res.output
    assert [r["verdict"] for r in _rows(results)] == ["no usable face", "unreadable"]


CTRL_C_CLIPS = 8


def _interruptible() -> None:
    """A job started in the background of a non-interactive shell (a CI runner may be one)
    inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler: restore
    the terminal's default, as a user pressing Ctrl-C has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_the_rows_done_so_far(tiny_checkpoint, inputs, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(CTRL_C_CLIPS):
        shutil.copy(inputs[0], folder / f"clip-{i:02d}.mp4")
    results = tmp_path / "results.csv"
    proc = subprocess.Popen([sys.executable, "-c", "from detection.detect import detect; detect()", "--input", str(folder), "--checkpoint", tiny_checkpoint,
                             "--output", str(results), "--report", str(tmp_path / "report"), *FAST],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and (not results.exists() or not _rows(results)):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    rows = _rows(results)
    assert 1 <= len(rows) < CTRL_C_CLIPS and all(r["verdict"] in ("likely fake", "likely real") for r in rows)
    shown = _parse(tmp_path / "report" / "index.html").link_texts  # rewritten after each video, before its row
    assert shown[: len(rows)] == [r["video"] for r in rows] and len(shown) - len(rows) in (0, 1)
