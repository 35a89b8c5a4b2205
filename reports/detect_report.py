"""`detect --report DIR`: the evidence behind each verdict, as pages a person reads.

DIR/index.html has a row per video (in input order; sortable by P(fake), and with
`--reference` by departure); DIR/vNNNN.html shows one video: with `--reference`, its
verdict against the reference and each keyframe's departure over time; every keyframe
scored, downscaled, with the face square and the background square drawn, both squares at
the size the model saw them, their noise residuals as the paper's Fig. 6 (and `visualize`)
draws them, and that frame's P(fake); a P(fake)-over-time plot; the failures; and the model
card (checkpoint, what it was trained on, its validation figures, the threshold and where
it came from). Every page repeats the weak-model sentence (`detection.weak_model`) where
the checkpoint earns it. Images are files in DIR/vNNNN/, named by number, so no user file
name ever becomes part of a path or URL; the pages refer to them relatively, so DIR opens
from disk or from a zip. The index is rewritten after every video: a run stopped half way
leaves a report of the videos judged.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from torch import nn  # noqa: E402

from pipeline.geometry import Square  # noqa: E402
from pipeline.keyframes import DecodeError, read_keyframes  # noqa: E402
from pipeline.pairs import ExtractOptions, FramePair  # noqa: E402
from reports.html_page import SORT_SCRIPT, css_class, definitions, esc, fmt, image, page, table, write_page  # noqa: E402
from reports.visualize import noise_traces, visible_noise  # noqa: E402
from training.detectors import model_kind  # noqa: E402
from training.presets import DEFAULT_MODEL_KIND  # noqa: E402

if TYPE_CHECKING:  # detection/ imports reports/, never the reverse: the verdict types are only named here
    from detection.verdict import Threshold, VideoVerdict

INDEX_NAME = "index.html"
FRAME_SIDE = 480  # longest side of a keyframe on its video's page
THUMB_SIDE = 128  # ... and in the index
NOISE_BATCH = 64  # squares per extractor pass: a long video's hundreds of keyframes would not fit at once
FACE_COLOUR = (229, 57, 53)
BACKGROUND_COLOUR = (30, 136, 229)
FACE_COLOUR_HEX = "#%02x%02x%02x" % FACE_COLOUR
BACKGROUND_COLOUR_HEX = "#%02x%02x%02x" % BACKGROUND_COLOUR


def framed(frame: np.ndarray, squares: list[tuple[Square, tuple[int, int, int]]], side: int) -> Image.Image:
    """The frame downscaled to `side` (longest side) with each square outlined in its colour."""
    img = Image.fromarray(frame)
    scale = min(1.0, side / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BOX)
    draw = ImageDraw.Draw(img)
    for (x, y, s), colour in squares:
        draw.rectangle([x * scale, y * scale, (x + s) * scale - 1, (y + s) * scale - 1], outline=colour, width=3)
    return img


def by_time(v: VideoVerdict) -> list[int]:
    """Indices of the keyframes in time order (I-frames are scored first, extra frames after)."""
    return sorted(range(len(v.keyframes)), key=lambda k: v.keyframes[k]["pts_time"])


def _uint8(unit: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(unit * 255), 0, 255).astype(np.uint8)


class VideoEvidence:
    """The images of one video, written as its pairs are cropped (a keyframe is not kept
    in memory), and its page once it is judged."""

    def __init__(self, root: str, number: int, name: str) -> None:
        self.folder = f"v{number:04d}"
        self.page = f"{self.folder}.html"
        self.name = name
        self.dir = os.path.join(root, self.folder)
        os.makedirs(self.dir, exist_ok=True)
        self.faces: list[np.ndarray] = []
        self.backgrounds: list[np.ndarray] = []
        self.thumbnail: str | None = None
        self.first_frame_image: str | None = None

    def src(self, name: str) -> str:
        return f"{self.folder}/{name}"

    def _save(self, img: Image.Image, name: str) -> str:
        img.save(os.path.join(self.dir, name), **({"quality": 85} if name.endswith(".jpg") else {}))
        return self.src(name)

    def _thumb(self, img: Image.Image) -> None:
        thumb = img.copy()
        thumb.thumbnail((THUMB_SIDE * 2, THUMB_SIDE))
        self.thumbnail = self._save(thumb, "thumb.jpg")

    def add(self, pair: FramePair) -> None:
        """Keep one pair's evidence: its frame with both squares, and the two squares."""
        k = len(self.faces)
        img = framed(pair.keyframe.image, [(pair.face_box, FACE_COLOUR), (pair.background_box, BACKGROUND_COLOUR)], FRAME_SIDE)
        self._save(img, f"frame-{k:03d}.jpg")
        if k == 0:
            self._thumb(img)
        self._save(Image.fromarray(pair.face), f"face-{k:03d}.png")
        self._save(Image.fromarray(pair.background), f"background-{k:03d}.png")
        self.faces.append(pair.face)
        self.backgrounds.append(pair.background)

    def first_frame(self, local: str, options: ExtractOptions) -> None:
        """For a video without a pair: its first keyframe, to see why (no face, a face too
        close for a background square); nothing when it cannot be decoded."""
        try:
            frames = list(read_keyframes(local, max_keyframes=1, timeout_s=options.timeout_s, max_pixels=options.max_pixels))
        except DecodeError:
            return
        if frames:
            img = framed(frames[0].image, [], FRAME_SIDE)
            self.first_frame_image = self._save(img, "frame-first.jpg")
            self._thumb(img)

    def write_noise(self, model: nn.Module, device) -> None:
        """The noise residual of every face and background square, made visible."""
        if not self.faces:
            return
        for kind, crops in (("face", self.faces), ("background", self.backgrounds)):
            noises = (n for i in range(0, len(crops), NOISE_BATCH)
                      for n in noise_traces(model, np.stack(crops[i : i + NOISE_BATCH]), device))
            for k, noise in enumerate(noises):
                visible = _uint8(visible_noise(noise))  # (H,W,3), or (H,W,1) from a one-channel extractor
                self._save(Image.fromarray(visible[..., 0] if visible.shape[-1] == 1 else visible), f"{kind}-noise-{k:03d}.png")

    def plot_over_time(self, verdict: VideoVerdict) -> str | None:
        """P(fake) of each keyframe against its time, with the threshold; None without keyframes."""
        if not verdict.keyframes:
            return None
        t = [verdict.keyframes[k]["pts_time"] for k in by_time(verdict)]
        p = [verdict.keyframes[k]["fake_probability"] for k in by_time(verdict)]
        fig, ax = plt.subplots(figsize=(7, 2.4), dpi=100)
        ax.plot(t, p, "o-", color="#444", ms=4, lw=1)
        ax.axhline(verdict.threshold.value, color=FACE_COLOUR_HEX, ls="--", lw=1, label=f"threshold {verdict.threshold.value:.3f}")
        ax.axhline(verdict.fake_probability, color="#888", ls=":", lw=1, label=f"video P(fake) {verdict.fake_probability:.3f}")
        ax.set(xlabel="time (s)", ylabel="P(fake)", ylim=(-0.03, 1.03))
        ax.legend(loc="upper right", fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(self.dir, "pfake.png"))
        plt.close(fig)
        return self.src("pfake.png")

    def plot_reference(self, verdict: VideoVerdict) -> str | None:
        """Each keyframe's departure from the reference over time, against the line where a
        video is unlike it; None without a departure."""
        ref = verdict.reference
        if ref is None or ref.departure is None:
            return None
        order = by_time(verdict)
        t = np.array([verdict.keyframes[k]["pts_time"] for k in order])
        d = np.array([ref.keyframe_departures[k] for k in order])
        out = np.array([ref.outside[k] for k in order], dtype=bool)
        fig, ax = plt.subplots(figsize=(7, 2.4), dpi=100)
        ax.axhspan(0, ref.unlike_at, color="#cfe3f7", label=f"inside the reference's spread (< {ref.unlike_at:g})")
        ax.plot(t, d, "-", color="#888", lw=1)
        ax.plot(t[~out], d[~out], "o", color="#444", ms=4, label="keyframe inside")
        ax.plot(t[out], d[out], "o", color=FACE_COLOUR_HEX, ms=5, label="keyframe outside")
        ax.axhline(ref.departure, color=BACKGROUND_COLOUR_HEX, ls=":", lw=1, label=f"video departure {ref.departure:.2f}")
        ax.set(xlabel="time (s)", ylabel="departure (spreads)", ylim=(0, max(ref.unlike_at, float(d.max())) * 1.6))
        ax.legend(loc="upper right", fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(os.path.join(self.dir, "reference.png"))
        plt.close(fig)
        return self.src("reference.png")


def verdict_badge(v: VideoVerdict) -> str:
    return f"<span class=\"v {css_class(v.verdict)}\">{esc(v.verdict)}</span>"


def comparison_cell(v: VideoVerdict) -> str:
    """P(fake) against the threshold it was compared to ("0.734 >= 0.412")."""
    if v.fake_probability is None:
        return "<span class=\"muted\">-</span>"
    p, sign, t = v.comparison().split(" ")
    return f"<span class=\"pfake\">{p}</span> {'&ge;' if sign == '>=' else '&lt;'} {t}"


def reference_cell(v: VideoVerdict) -> str:
    """The verdict against the reference, the departure and what it rests on, or why there is none."""
    if v.reference is None:
        return "<span class=\"muted\">-</span>"
    return esc(v.reference.line())


def _counts(counts: dict[str, Any] | None) -> str:
    return ", ".join(f"{esc(k)} {esc(v)}" for k, v in (counts or {}).items()) or "-"


def _extractor(config: dict[str, Any]) -> str:
    """Which noise extractor the model has and where its weights came from."""
    train, arch = config.get("train", {}), config["model"]
    name = arch.get("extractor", "dncnn")  # checkpoints from before other extractors: the paper's DnCNN
    init = train.get("init_denoiser")
    if name != "dncnn":
        origin = f"pretrained ({init or 'packaged weights'}), frozen"
    elif init:
        origin = (f"initialised from {init} ({config.get('init_denoiser_format', 'weights')}), "
                  + ("frozen" if train.get("freeze_denoiser") else "fine-tuned with the detector"))
    else:
        origin = "trained from scratch with the detector"
    reference = f"; the face's noise is compared with the {arch['reference']}" if arch.get("reference") else ""
    return f"{name}: {origin}{reference}"


def model_card(checkpoint: str, ckpt: dict[str, Any], threshold: Threshold) -> dict[str, str]:
    """What judged the videos, as (term, HTML) pairs: the checkpoint and model, its
    extractor, what it was trained on (the shards' summary the checkpoint carries, or the
    crop options alone for older ones), the figures of its validation epoch and the threshold."""
    config = ckpt["config"]
    train = config.get("train", {})
    kind = model_kind(config)
    record = ckpt.get("metrics") or {}
    card = {
        "checkpoint": esc(checkpoint),
        "model": esc(f"{kind}" + (f", preset {train.get('preset')}" if kind == DEFAULT_MODEL_KIND else "")
                     + f", {config['model']['input_size']} px squares, epoch {ckpt.get('epoch')}"),
    }
    if kind == DEFAULT_MODEL_KIND:
        card["extractor"] = esc(_extractor(config))
    card["trained on"] = esc(train.get("shards", "-"))
    summary = config.get("shard_summary")
    if summary:
        if summary.get("input"):
            card["videos from"] = esc(summary["input"])
        card["pairs per split"] = "; ".join(f"{esc(name)}: {esc(s.get('pairs'))} ({_counts({k: v for k, v in s.items() if k != 'pairs'})})"
                                            for name, s in summary.get("splits", {}).items())
        if summary.get("videos"):
            card["videos"] = _counts(summary["videos"])
        if summary.get("failures"):
            card["videos' failures"] = _counts(summary["failures"])
    crop = config.get("shard_options") or {}
    if crop:
        card["crops"] = esc(", ".join(f"{k} {crop[k]}" for k in ("face_scale", "resize_filter", "min_frames") if k in crop) or "-")
    card["recipe"] = esc(", ".join(f"{k} {train[k]}" for k in ("epochs", "batch_size", "fake_source", "self_blend", "balance_by")
                                   if k in train))
    card["validation"] = esc(f"epoch {record.get('epoch', '-')}: AUC {fmt(record.get('val_auc'))}, accuracy "
                             f"{fmt(record.get('val_accuracy'))}, equal-error rate {fmt(record.get('val_eer'))}, "
                             f"training loss {fmt(record.get('loss'), 4)}")
    card["threshold"] = esc(f"{threshold.value:.3f}: {threshold.source}")
    return card


class Report:
    """DIR/index.html and a page per video, for one `detect` run."""

    def __init__(self, root: str, checkpoint: str, ckpt: dict[str, Any], model: nn.Module, threshold: Threshold, device,
                 model_warning: str | None, reference: str | None = None) -> None:
        os.makedirs(root, exist_ok=True)
        self.reference = reference  # `detect --reference`: the line that says what the reference rests on
        self.root = root
        self.index = os.path.join(root, INDEX_NAME)
        self.model, self.device, self.threshold = model, device, threshold
        # the weak-model sentence (`detection.weak_model`), shown beside the verdicts on every page
        self.warning = f"<p class=\"warning\">{esc(model_warning)}</p>" if model_warning else ""
        self.card = model_card(checkpoint, ckpt, threshold)
        self.has_extractor = model_kind(ckpt["config"]) == DEFAULT_MODEL_KIND
        self.rows: list[tuple[VideoVerdict, VideoEvidence]] = []
        self._started = 0

    def video(self, name: str) -> VideoEvidence:
        """Where the next video's evidence goes."""
        self._started += 1
        return VideoEvidence(self.root, self._started, name)

    def add(self, verdict: VideoVerdict, evidence: VideoEvidence) -> None:
        """Write the video's page and the index as it now stands."""
        if self.has_extractor:
            evidence.write_noise(self.model, self.device)
        write_page(os.path.join(self.root, evidence.page), self._video_page(verdict, evidence))
        self.rows.append((verdict, evidence))
        write_page(self.index, self._index_page())

    def _index_page(self) -> str:
        counts: dict[str, int] = {}
        for v, _ in self.rows:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        rows, attrs = [], []
        for n, (v, e) in enumerate(self.rows, start=1):
            thumb = image(e.thumbnail, f"first frame of {e.name}", "thumb") if e.thumbnail else "<span class=\"muted\">none</span>"
            rows.append([str(n), f"<a href=\"{esc(e.page)}\">{esc(v.video)}</a>", thumb, verdict_badge(v), comparison_cell(v),
                         str(len(v.keyframes)), f"<span class=\"small\">{esc(v.reason)}</span>"]
                        + ([reference_cell(v)] if self.reference else []))
            departure = v.reference.departure if v.reference is not None else None
            attrs.append(f"data-order=\"{n}\" data-pfake=\"{'' if v.fake_probability is None else repr(v.fake_probability)}\" "
                         f"data-departure=\"{'' if departure is None else repr(departure)}\"")
        headers = ["#", "video", "thumbnail", "verdict", "P(fake) vs threshold &#x21C5;", "frames", "reason"]
        headers += ["against the reference &#x21C5;"] if self.reference else []
        unlike_at = next((v.reference.unlike_at for v, _ in self.rows if v.reference is not None), None)
        body = (f"<h1>noisetrace report: {len(self.rows)} video(s)</h1>{self.warning}"
                f"<p>{esc(', '.join(f'{n} {k}' for k, n in counts.items()))}. A video is <b>likely fake</b> when the mean "
                f"P(fake) of its keyframes is at or above the threshold, {self.threshold.value:.3f} "
                f"({esc(self.threshold.source)}). Click a column marked &#x21C5; or # to sort; a name opens the frames and "
                "noise traces behind its verdict.</p>"
                + (f"<p>{esc(self.reference)}. A video is <b>unlike its reference</b> when its keyframes' mean "
                   f"face and background high-pass energies lie {unlike_at:g} or more of the reference's spreads from the "
                   "reference keyframes' (a Mahalanobis distance).</p>" if unlike_at is not None else "")
                + table(headers, rows, {0: "data-sort=\"order\"", 4: "data-sort=\"pfake\"", 7: "data-sort=\"departure\""}, attrs)
                + "<h2>Model</h2>" + definitions(self.card))
        return page("noisetrace report", body, SORT_SCRIPT)

    def _video_page(self, v: VideoVerdict, e: VideoEvidence) -> str:
        parts = [f"<p><a href=\"{INDEX_NAME}\">&larr; all videos</a></p>", f"<h1>{esc(v.video)}</h1>",
                 f"<p class=\"verdict\">{verdict_badge(v)} P(fake) {comparison_cell(v)} (threshold) over {len(v.keyframes)} keyframe(s)"
                 + (f"; <span class=\"muted\">{esc(v.reason)}</span>" if v.reason else "") + "</p>",
                 self.warning, f"<p class=\"muted small\">Threshold {v.threshold.value:.3f}: {esc(v.threshold.source)}.</p>"]
        if v.reference is not None:
            parts += ["<h2>Against its reference</h2>", f"<p>{reference_cell(v)}</p>",
                      f"<p class=\"muted small\">{esc(self.reference)}.</p>"]
            band = e.plot_reference(v)
            if band:
                parts.append(image(band, "each keyframe's departure from the reference over time"))
        plot = e.plot_over_time(v)
        if plot:
            parts += ["<h2>P(fake) over time</h2>", image(plot, "P(fake) of each keyframe over time")]
        if v.keyframes:
            parts += ["<h2>Keyframes</h2>",
                      "<p class=\"legend small\">Squares: <span style=\"border-color:%s\"></span>face "
                      "<span style=\"border-color:#%02x%02x%02x\"></span>background. Below each frame, the two squares as the "
                      "model sees them and their noise residuals (mid-grey = each channel's mean, &plusmn;3 standard "
                      "deviations span black to white): a face swapped in carries noise unlike its background's.</p>"
                      % ((FACE_COLOUR_HEX,) + BACKGROUND_COLOUR),
                      "<div class=\"frames\">" + "".join(self._frame(v, e, k) for k in by_time(v)) + "</div>"]
        elif e.first_frame_image:
            parts += ["<h2>First frame</h2>", image(e.first_frame_image, "first keyframe", "full")]
        if v.failures:
            parts += ["<h2>Failures</h2>", table(["frame", "reason", "detail"], (
                [esc(f.get("frame_index", "whole video")), esc(f["reason"]), esc(f["detail"])] for f in v.failures))]
        parts += ["<h2>Model</h2>", definitions(self.card)]
        return page(f"{v.video}: {v.verdict}", "\n".join(parts))

    def _frame(self, v: VideoVerdict, e: VideoEvidence, k: int) -> str:
        kf = v.keyframes[k]
        cells = [("face", f"face-{k:03d}.png"), ("background", f"background-{k:03d}.png")]
        if self.has_extractor:
            cells += [("face noise", f"face-noise-{k:03d}.png"), ("background noise", f"background-noise-{k:03d}.png")]
        quad = "".join(f"<figure>{image(e.src(name), label + ', frame ' + str(kf['frame_index']), 'px')}"
                       f"<figcaption>{label}</figcaption></figure>" for label, name in cells)
        return (f"<div class=\"frame\" data-pfake=\"{kf['fake_probability']!r}\">"
                + image(e.src(f"frame-{k:03d}.jpg"), f"frame {kf['frame_index']}", "full")
                + f"<div>frame {kf['frame_index']} ({esc(kf['frame_type'])}), t = {kf['pts_time']:.2f} s: "
                f"<b>P(fake) <span class=\"pfake\">{kf['fake_probability']:.3f}</span></b></div>"
                + f"<div class=\"quad\">{quad}</div></div>")
