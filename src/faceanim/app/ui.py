"""The Gradio Blocks of ``faceanim app``: layout and event wiring only; the work is the pipeline's."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Offline: no analytics or update checks (read when gradio is imported).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import numpy as np

from faceanim.app.controls import Controls
from faceanim.app.jobs import render_job
from faceanim.app.preview import PreviewCache, crop_preview, is_image_driver, render_preview
from faceanim.app.uploads import UploadLimits, check_upload
from faceanim.errors import Cancelled, FaceAnimError
from faceanim.media.kinds import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from faceanim.media.video import probe_video
from faceanim.motion.templates import BUNDLED_TEMPLATES, procedural_template
from faceanim.pipeline.run import TEMPLATE_PREFIX
from faceanim.render.registry import available_renderers, default_renderer

NO_TEMPLATE = "(none: use the uploaded video)"


@dataclass(frozen=True)
class AppConfig:
    work_dir: Path  # results are written here (served to the browser, removed with the app's temp folder)
    limits: UploadLimits = field(default_factory=UploadLimits)
    max_frames: int | None = None  # cap on rendered frames per job (None = the whole driver)
    provenance: bool = True


def speech_available() -> bool:
    """The speech tab appears once the speech stage (``faceanim.pipeline.speak``) is installed."""
    try:
        return importlib.util.find_spec("faceanim.pipeline.speak") is not None
    except ModuleNotFoundError:
        return False


def _error(exc: FaceAnimError) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def _face_choice(text: str) -> int | str:
    return "all" if text == "all" else int(text)


def controls_from(values: dict[str, Any]) -> Controls:
    """The :class:`Controls` for the UI's control values (by name)."""
    v = values
    eyes = v["eyes_on"]
    return Controls(
        mode=v["mode"],
        pose=v["pose"],
        expression_scale=float(v["expression_scale"]),
        left_eye_open=float(v["left_eye"]) if eyes else None,
        right_eye_open=float(v["right_eye"]) if eyes else None,
        lip_open=float(v["lip"]) if v["lip_on"] else None,
        gaze=(float(v["gaze_x"]), float(v["gaze_y"])) if v["gaze_on"] else None,
        head_offset=(float(v["yaw"]), float(v["pitch"]), float(v["roll"])),
        smoothing=float(v["smoothing"]),
        face=_face_choice(v["face"]),
        renderer=v["renderer"],
        crop_only=v["crop_only"],
        crop_size=int(v["crop_size"]),
    )


class _Jobs:
    """Cancel flags of running renders, one per browser session."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        with self._lock:
            self._events[session] = ev = threading.Event()
        return ev

    def cancel(self, session: str) -> None:
        with self._lock:
            ev = self._events.get(session)
        if ev is not None:
            ev.set()


class LiveState:
    """One browser's live session: the webcam's frames go through the engine's session for this portrait."""

    def __init__(self, key: tuple, session: Any) -> None:
        self.key = key
        self.session = session
        self.started = time.monotonic()

    def close(self) -> None:
        self.session.close()


def _close_live(state: Any) -> None:
    if isinstance(state, LiveState):
        state.close()


def build_app(config: AppConfig) -> gr.Blocks:
    """The app's Blocks (not launched)."""
    cache = PreviewCache()
    jobs = _Jobs()
    renderers = available_renderers()
    image_types = sorted(IMAGE_SUFFIXES)
    with gr.Blocks(title="faceanim", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# faceanim\nAnimate one portrait with a driving video, an expression image, speech or your webcam, "
            "on the CPU. Everything it writes carries a *synthetic media* mark. "
            "Animate people only with their consent."
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                portrait = gr.File(label="Portrait (image)", file_types=image_types, elem_id="portrait")
                faces_img = gr.Image(label="Faces found (numbered, 0 = largest)", interactive=False, height=220,
                                     elem_id="faces")
                face = gr.Dropdown(["0"], value="0", label="Face to animate", elem_id="face",
                                   info="for group photos; 'all' animates every face")
                crop_img = gr.Image(label="Crop preview (what the renderer sees)", interactive=False, height=200,
                                    elem_id="crop")
            with gr.Column(scale=2, min_width=360):
                active = gr.State("video")
                with gr.Tabs():
                    with gr.Tab("Video-driven", id="video") as tab_video:
                        driving_video = gr.File(label="Driving video", file_types=sorted(VIDEO_SUFFIXES),
                                                elem_id="driving-video")
                        template = gr.Dropdown([NO_TEMPLATE, *BUNDLED_TEMPLATES], value=NO_TEMPLATE,
                                               label="…or a bundled motion template", elem_id="template")
                        max_frames = gr.Number(value=config.max_frames, precision=0, minimum=1,
                                               label="Max frames (empty = whole driver)", elem_id="max-frames")
                        with gr.Row():
                            render_btn = gr.Button("Render video", variant="primary", elem_id="render")
                            cancel_btn = gr.Button("Cancel", elem_id="cancel")
                        result_video = gr.Video(label="Result", interactive=False, buttons=["download"],
                                                elem_id="result-video")
                        result_file = gr.File(label="Download", interactive=False, elem_id="result-file")
                        status = gr.Markdown(elem_id="status")
                    with gr.Tab("Image-driven", id="image") as tab_image:
                        expression = gr.File(label="Expression image", file_types=image_types,
                                             elem_id="expression")
                        render_img_btn = gr.Button("Render image", variant="primary", elem_id="render-image")
                        result_image = gr.Image(label="Result", interactive=False, elem_id="result-image")
                        result_image_file = gr.File(label="Download", interactive=False)
                    with gr.Tab("Speech-driven", id="speech", visible=speech_available()) as tab_speech:
                        speech_audio = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                                label="Speech (upload or record)")
                        speech_btn = gr.Button("Render talking video", variant="primary")
                        speech_video = gr.Video(label="Result", interactive=False, buttons=["download"])
                    with gr.Tab("Live", id="live") as tab_live:
                        gr.Markdown("Your webcam drives the portrait; frames are animated as they arrive "
                                    "(late frames are dropped). Upload a portrait first.")
                        with gr.Row():
                            webcam = gr.Image(sources=["webcam"], streaming=True, label="Webcam", type="numpy",
                                              elem_id="webcam")
                            live_out = gr.Image(label="Animated", interactive=False, streaming=True, elem_id="live-out")
                        live_info = gr.Markdown(elem_id="live-info")
                        live_state = gr.State(None, delete_callback=_close_live)
            with gr.Column(scale=1, min_width=280):
                preview = gr.Image(label="Still preview (updates with the controls)", interactive=False,
                                   elem_id="preview")
                preview_at = gr.Slider(0, 10, value=0.0, step=0.1, label="Preview at (s) of the driver",
                                       elem_id="preview-at")
                mode = gr.Radio(["relative", "absolute"], value="relative", label="Motion", elem_id="mode")
                pose = gr.Checkbox(True, label="Follow the driver's head pose")
                expression_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="Expression strength",
                                             elem_id="expression-scale")
                with gr.Accordion("Eyes, mouth and gaze", open=True):
                    eyes_on = gr.Checkbox(False, label="Set eye openness", elem_id="eyes-on")
                    with gr.Row():
                        left_eye = gr.Slider(0, 0.5, value=0.3, step=0.01, label="Left eye open")
                        right_eye = gr.Slider(0, 0.5, value=0.3, step=0.01, label="Right eye open")
                    lip_on = gr.Checkbox(False, label="Set mouth openness", elem_id="lip-on")
                    lip = gr.Slider(0, 0.6, value=0.0, step=0.01, label="Lip open", elem_id="lip")
                    gaze_on = gr.Checkbox(False, label="Fix the gaze")
                    with gr.Row():
                        gaze_x = gr.Slider(-0.3, 0.3, value=0.0, step=0.01, label="Gaze x (eye widths)")
                        gaze_y = gr.Slider(-0.3, 0.3, value=0.0, step=0.01, label="Gaze y")
                with gr.Accordion("Head pose offsets", open=True), gr.Row():
                    angle = {"minimum": -30, "maximum": 30, "value": 0, "step": 1}
                    yaw = gr.Slider(label="Head yaw °", **angle)
                    pitch = gr.Slider(label="Pitch °", **angle)
                    roll = gr.Slider(label="Roll °", **angle)
                with gr.Accordion("Smoothing and rendering", open=True):
                    smoothing = gr.Slider(0, 5, value=1.0, step=0.1, label="Smoothing (0 = off)")
                    renderer = gr.Dropdown(renderers, value=default_renderer(),
                                           label="Renderer", elem_id="renderer")
                    with gr.Row():
                        crop_only = gr.Checkbox(False, label="Crop only")
                        crop_size = gr.Radio(["256", "512"], value="256", label="Crop size")

        named = {"mode": mode, "pose": pose, "expression_scale": expression_scale, "eyes_on": eyes_on,
                 "left_eye": left_eye, "right_eye": right_eye, "lip_on": lip_on, "lip": lip, "gaze_on": gaze_on,
                 "gaze_x": gaze_x, "gaze_y": gaze_y, "yaw": yaw, "pitch": pitch, "roll": roll,
                 "smoothing": smoothing, "face": face, "renderer": renderer, "crop_only": crop_only,
                 "crop_size": crop_size}
        names = list(named)
        control_inputs = list(named.values())

        def unpack(values: tuple) -> Controls:
            return controls_from(dict(zip(names, values, strict=True)))

        def portrait_path(path: str | None) -> str:
            return str(check_upload(path, "image", config.limits, "portrait"))

        def driver_for(video: str | None, tpl: str, expr: str | None, tab_image: bool) -> str | None:
            if tab_image:
                return str(check_upload(expr, "image", config.limits, "expression image")) if expr else None
            if tpl and tpl != NO_TEMPLATE:
                return TEMPLATE_PREFIX + tpl
            return str(check_upload(video, "video", config.limits, "driving video")) if video else None

        # ---------------------------------------------------------------- portrait: faces, crop, preview
        def on_portrait(path: str | None, *values: Any):
            if not path:
                return None, gr.update(choices=["0"], value="0"), None, None
            try:
                p = portrait_path(path)
                found = cache.faces(p)
                if found.count == 0:
                    raise FaceAnimError("no face found (try a clearer, larger, more frontal face)",
                                        path=Path(p).name)
                choices = [str(i) for i in range(found.count)] + (["all"] if found.count > 1 else [])
                controls = replace(unpack(values), face=0)
                still = render_preview(cache, p, None, controls)
                return found.annotated, gr.update(choices=choices, value="0"), \
                    crop_preview(cache, p, controls), still
            except FaceAnimError as e:
                raise _error(e) from None

        portrait.change(on_portrait, [portrait, *control_inputs], [faces_img, face, crop_img, preview])

        for tab, name in ((tab_video, "video"), (tab_image, "image"), (tab_speech, "speech"), (tab_live, "live")):
            tab.select(lambda name=name: name, None, active)

        def on_controls(path: str | None, video: str | None, tpl: str, expr: str | None, at: float, tab: str,
                        *values: Any):
            if not path:
                return gr.update(), gr.update()
            try:
                p = portrait_path(path)
                controls = unpack(values)
                drv = driver_for(video, tpl, expr, tab == "image") if tab in ("video", "image") else None
                still = render_preview(cache, p, drv, controls, float(at or 0.0))
                return still, crop_preview(cache, p, controls)
            except FaceAnimError as e:
                raise _error(e) from None

        preview_inputs = [portrait, driving_video, template, expression, preview_at, active, *control_inputs]
        for c in [*control_inputs, preview_at]:
            event = c.release if isinstance(c, gr.Slider) else c.change
            event(on_controls, preview_inputs, [preview, crop_img], trigger_mode="always_last",
                  show_progress="hidden")

        def on_driving(video: str | None, tpl: str):
            """The preview-time slider spans the chosen driver."""
            seconds = 10.0
            with contextlib.suppress(FaceAnimError):
                if tpl and tpl != NO_TEMPLATE:
                    motion = procedural_template(tpl)
                    seconds = len(motion) / float(motion.fps)
                elif video:
                    seconds = probe_video(check_upload(video, "video", config.limits)).duration or seconds
            return gr.update(maximum=round(max(seconds - 0.05, 0.1), 2))

        for c in (driving_video, template):
            c.change(on_driving, [driving_video, template], [preview_at], queue=False)
        for c in (driving_video, template, expression, active):
            c.change(on_controls, preview_inputs, [preview, crop_img], trigger_mode="always_last")

        # ---------------------------------------------------------------- video render
        # gradio injects the request and progress only into positional parameters before ``*values``
        def on_render(request: gr.Request, path: str | None, video: str | None, tpl: str, frames: float | None,
                      progress=gr.Progress(), *values: Any):
            try:
                p = portrait_path(path)
                drv = driver_for(video, tpl, None, False)
                if drv is None:
                    raise FaceAnimError("please upload a driving video or choose a motion template")
                controls = unpack(values)
                cancel = jobs.start(request.session_hash or "")
                progress(0.0, desc="preparing")

                def tick(done: int, total: int | None) -> None:
                    progress((done, total) if total else done, desc="rendering", unit="frames")

                caps = [int(n) for n in (frames, config.max_frames) if n]  # the app's cap bounds the user's
                limit = min(caps) if caps else None
                report = render_job(p, drv, controls, config.work_dir, max_frames=limit,
                                    provenance=config.provenance, on_progress=tick, cancel=cancel)
            except Cancelled:
                return None, None, "Cancelled: nothing was written."
            except FaceAnimError as e:
                raise _error(e) from None
            msg = f"Rendered {report.frames} frames ({report.missing_frames} without a face in the driver)."
            return str(report.output), str(report.output), msg

        render_btn.click(on_render, [portrait, driving_video, template, max_frames, *control_inputs],
                         [result_video, result_file, status], concurrency_limit=1, concurrency_id="render")

        def on_cancel(request: gr.Request) -> None:
            jobs.cancel(request.session_hash or "")

        cancel_btn.click(on_cancel, None, None, queue=False)

        def on_render_image(path: str | None, expr: str | None, *values: Any):
            try:
                p = portrait_path(path)
                drv = driver_for(None, NO_TEMPLATE, expr, True)
                if drv is None or not is_image_driver(drv):
                    raise FaceAnimError("please upload an expression image")
                report = render_job(p, drv, unpack(values), config.work_dir, provenance=config.provenance,
                                    suffix=".png")
            except FaceAnimError as e:
                raise _error(e) from None
            return str(report.output), str(report.output)

        render_img_btn.click(on_render_image, [portrait, expression, *control_inputs],
                             [result_image, result_image_file], concurrency_limit=1, concurrency_id="render")

        # ---------------------------------------------------------------- speech
        def on_speech(path: str | None, audio: str | None, progress=gr.Progress(), *values: Any):
            try:
                p = portrait_path(path)
                a = str(check_upload(audio, "audio", config.limits, "speech audio"))
                from faceanim.app.speech import render_speech

                progress(0.0, desc="speaking")
                return str(render_speech(p, a, unpack(values), config.work_dir, provenance=config.provenance,
                                         max_seconds=config.limits.max_seconds,
                                         on_progress=lambda d, t: progress((d, t) if t else d, unit="frames")))
            except FaceAnimError as e:
                raise _error(e) from None

        speech_btn.click(on_speech, [portrait, speech_audio, *control_inputs], [speech_video],
                         concurrency_limit=1, concurrency_id="render")

        # ---------------------------------------------------------------- live
        def on_live(frame: np.ndarray | None, path: str | None, state: Any, *values: Any):
            if frame is None:
                return gr.update(), state, gr.update()
            try:
                p = portrait_path(path)
                controls = unpack(values)
                from faceanim.live.stream import open_session

                key = (p, *controls.prepare_key(), controls.smoothing, controls.crop_only)
                if not isinstance(state, LiveState) or state.key != key:
                    _close_live(state)
                    prepared, _ = cache.animator(p, controls)
                    state = LiveState(key, open_session(prepared, controls.animator_config(), controls.smoothing))
                state.session.set_transfer(controls.transfer())
                t0 = time.perf_counter()
                frames = state.session.push_image(np.ascontiguousarray(frame), time.monotonic() - state.started)
                ms = 1000 * (time.perf_counter() - t0)
                if not frames:
                    return gr.update(), state, gr.update()
                out = frames[-1]
                return out.image, state, f"{out.status} · {ms:.0f} ms per frame"
            except FaceAnimError as e:
                raise _error(e) from None

        webcam.stream(on_live, [webcam, portrait, live_state, *control_inputs], [live_out, live_state, live_info],
                      stream_every=0.1, time_limit=600, concurrency_limit=4, trigger_mode="always_last",
                      show_progress="hidden")
    return demo


def launch(config: AppConfig, host: str = "127.0.0.1", port: int = 7860, max_file_mb: float | None = None,
           open_browser: bool = False) -> None:
    """Serve the app until interrupted (offline; no share link)."""
    demo = build_app(config)
    demo.queue(default_concurrency_limit=2, max_size=32)
    demo.launch(
        server_name=host, server_port=port, share=False, inbrowser=open_browser, show_error=True,
        allowed_paths=[str(config.work_dir)], max_file_size=f"{max_file_mb or config.limits.max_mb:g}mb",
        footer_links=[], ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False, quiet=False,
        theme=gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                font_mono=["ui-monospace", "monospace"]),
    )
