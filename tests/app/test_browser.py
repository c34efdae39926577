"""The web app in a real browser: upload, still preview reacting to a control, progress, the result video plays,
a clear message for a bad upload, and the live tab streaming a (fake) webcam through the engine."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
PORTRAIT = "sadtalker_happy.png"  # 256x256, one face
CLIP = "liveportrait_d0.mp4"  # 512x512, 25 fps


def _img_src(page, elem_id: str) -> str | None:
    return page.evaluate(f"() => document.querySelector('#{elem_id} img')?.getAttribute('src') || null")


def test_upload_preview_render_and_play(app_url, browser, portrait, clip) -> None:
    page = browser.new_page()
    outside: list[str] = []

    def note(request) -> None:
        host = urlparse(request.url).hostname
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in ("127.0.0.1", "localhost"):
            outside.append(request.url)

    page.on("request", note)
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#portrait input[type=file]", state="attached", timeout=30_000)

    # Portrait: faces are listed, a crop and a still preview appear.
    page.set_input_files("#portrait input[type=file]", str(portrait(PORTRAIT)))
    page.wait_for_function("() => document.querySelector('#preview img')?.getAttribute('src')", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#crop img')?.getAttribute('src')", timeout=30_000)
    assert _img_src(page, "faces")

    # A control change re-renders the still preview (not the video): the image changes.
    before = _img_src(page, "preview")
    page.get_by_label("Set mouth openness").check()
    page.wait_for_function(
        "(b) => { const s = document.querySelector('#preview img')?.getAttribute('src'); return s && s !== b; }",
        arg=before, timeout=30_000,
    )

    # Driving clip, a few frames, render: the result video is shown and plays.
    page.set_input_files("#driving-video input[type=file]", str(clip(CLIP)))
    page.wait_for_timeout(500)
    frames = page.locator("#max-frames input")
    frames.fill("40")
    frames.press("Tab")
    page.click("#render")
    # A progress bar fed by the pipeline's progress callback, while it renders.
    page.wait_for_function("() => Array.from(document.querySelectorAll('.progress-level'))"
                           ".some(e => /(preparing|rendering).*%/.test(e.innerText))", timeout=30_000, polling=50)
    page.wait_for_selector("#result-video video", timeout=90_000)
    page.wait_for_function("() => { const v = document.querySelector('#result-video video');"
                           " return v && v.readyState >= 2 && v.duration > 0; }", timeout=60_000)
    duration = page.evaluate("() => document.querySelector('#result-video video').duration")
    assert 1.2 < duration < 2.0  # 40 frames at 25 fps
    page.evaluate("() => { const v = document.querySelector('#result-video video'); v.muted = true; v.play(); }")
    page.wait_for_function("() => document.querySelector('#result-video video').currentTime > 0.2", timeout=20_000)
    assert "40 frames" in page.locator("#status").inner_text()
    assert page.locator("#result-file a").count() >= 1  # the download link

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => { const v = document.querySelector('#result-video video'); v.pause(); }")
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    assert not outside, f"the app contacted other hosts: {outside[:5]}"
    page.close()


def test_bad_upload_shows_clear_message(app_url, browser, tmp_path) -> None:
    page = browser.new_page()
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#portrait input[type=file]", state="attached", timeout=30_000)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not an image")
    page.set_input_files("#portrait input[type=file]", str(broken))
    toast = page.get_by_text("broken.png", exact=False).filter(has_text="corrupt")
    toast.first.wait_for(timeout=30_000)
    page.close()


def test_live_tab_streams_webcam_frames_through_the_engine(app_url, browser, portrait) -> None:
    page = browser.new_page()
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#portrait input[type=file]", state="attached", timeout=30_000)
    page.set_input_files("#portrait input[type=file]", str(portrait(PORTRAIT)))
    page.wait_for_function("() => document.querySelector('#preview img')?.getAttribute('src')", timeout=60_000)
    page.get_by_role("tab", name="Live").click()
    page.locator("#webcam button", has_text="Click to Access Webcam").click()
    page.locator("#webcam button", has_text="Record").click(timeout=15_000)
    # Chromium's fake camera shows a test pattern (no face): the portrait comes back, status reported per frame.
    page.wait_for_function("() => document.querySelector('#live-out img')?.getAttribute('src')", timeout=30_000)
    page.wait_for_function("() => /ms per frame/.test(document.querySelector('#live-info')?.innerText || '')",
                           timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-live.png"), full_page=True)
    page.close()


def test_image_driven_tab_renders_an_expression(app_url, browser, portrait) -> None:
    page = browser.new_page()
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#portrait input[type=file]", state="attached", timeout=30_000)
    page.set_input_files("#portrait input[type=file]", str(portrait(PORTRAIT)))
    page.wait_for_function("() => document.querySelector('#preview img')?.getAttribute('src')", timeout=60_000)
    page.get_by_role("tab", name="Image-driven").click()
    page.set_input_files("#expression input[type=file]", str(portrait("liveportrait_d19.jpg")))  # mouth open
    page.click("#render-image")
    page.wait_for_function("() => document.querySelector('#result-image img')?.naturalWidth === 256",
                           timeout=60_000)
    page.close()
