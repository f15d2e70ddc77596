"""`view` in a real browser: Debian's headless Chromium, driven by Selenium with the system
chromedriver (nothing is downloaded), against the viewer on a free local port."""

import http.client
import os
import shutil
import sys
import urllib.parse

import pytest
from builders import shifted_predictions
from PIL import Image

from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.generate.synthetic import write_synthetic_dataset

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
OUTLINE = [255, 230, 0]  # clevr_remv.view.layers.OUTLINE_RGBA

# The canvas's pixels as [r, g, b, a, r, g, b, a, ...], read in the page.
CANVAS_PIXELS = (
    "const c = document.getElementById('view');"
    "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);"
)


@pytest.fixture(scope="module")
def browsed(tmp_path_factory):
    """A 2-scene, 3x3-view, 96x64 dataset whose scene 0 expression 0 is not valid in view (1, 1),
    and shifted predictions of it."""
    folder = tmp_path_factory.mktemp("browsed")
    store = write_synthetic_dataset(folder / "data", scenes=2, grid=3, width=96, height=64, seed=3)
    refexps = store.load_refexps(0)
    refexps["expressions"][0]["views"] = [view for view in store.views() if view != (1, 1)]
    write_json_atomic(store.refexps_path(0), refexps, "refexps")
    return folder / "data", shifted_predictions(folder / "data", folder / "predictions.jsonl")


def require_chromium() -> None:
    """Skip without Chromium and its chromedriver, but fail in CI (the CI variable set, as .ci/run
    does), where the browser test must run."""
    if CHROMIUM and CHROMEDRIVER:
        return
    reason = "no Chromium installed: `apt-get install -y chromium chromium-driver` (.ci/run does this)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI={os.environ['CI']}: {reason}; the browser test may not skip in CI")
    pytest.skip(reason)


def test_in_ci_a_missing_chromium_fails_instead_of_skipping(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="may not skip in CI"):
        require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no Chromium installed"):
        require_chromium()


@pytest.fixture
def browser():
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def outline_pixels(pixels, width):
    """The (x, y) of the canvas pixels painted in the outline colour."""
    return {(i // 4 % width, i // 4 // width) for i in range(0, len(pixels), 4) if pixels[i : i + 3] == OUTLINE}


def test_keys_and_drag_move_the_camera_and_the_outline_follows(browsed, browser, live_viewer, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    data, predictions = browsed
    browser.get(live_viewer(data, predictions))
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.find_element(By.ID, "view").get_attribute("data-view") == "u2_v2")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scene-list li")) == 2
    plain = browser.execute_script(CANVAS_PIXELS)
    assert outline_pixels(plain, 96) == set()

    browser.find_element(By.CSS_SELECTOR, "#expressions li[data-id='0']").click()
    wait.until(lambda d: outline_pixels(d.execute_script(CANVAS_PIXELS), 96))
    wait.until(lambda d: d.find_element(By.ID, "view-iou").text.startswith("IoU"))
    centre = browser.execute_script(CANVAS_PIXELS)
    assert browser.find_element(By.ID, "view-iou").text == "IoU 100.00 %"  # no shift at the centre column
    cells = browser.find_elements(By.CSS_SELECTOR, "#grid-map div")
    assert [cell.get_attribute("class") == "invalid" for cell in cells] == [True] + [False] * 8
    heat = [cell.text for cell in cells]  # IoU per view, v-major; the prediction is off by |u - 2| pixels
    assert heat[0] == "" and heat[1] == heat[4] == heat[7] == "100"
    assert all(0 < int(heat[i]) < 100 for i in (2, 3, 5, 6, 8))

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: d.find_element(By.ID, "view").get_attribute("data-view") == "u3_v2")
    wait.until(lambda d: d.execute_script(CANVAS_PIXELS) != centre)
    moved = browser.execute_script(CANVAS_PIXELS)
    assert outline_pixels(moved, 96) and outline_pixels(moved, 96) != outline_pixels(centre, 96)
    assert browser.find_element(By.CSS_SELECTOR, "#grid-map .current").get_attribute("title").startswith("u3_v2")
    assert browser.find_element(By.ID, "view-label").text == "view u3_v2"

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_DOWN)
    wait.until(lambda d: d.find_element(By.ID, "view").get_attribute("data-view") == "u3_v3")
    canvas = browser.find_element(By.ID, "view")
    ActionChains(browser).click_and_hold(canvas).move_by_offset(-canvas.rect["width"] // 3, 0).release().perform()
    wait.until(lambda d: d.find_element(By.ID, "view").get_attribute("data-view") == "u1_v3")  # two steps left
    browser.find_element(By.ID, "toggle-instances").click()
    objects = len(DatasetStore(data).load_scene(0)["objects"])
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#legend li")) == objects)
    browser.find_element(By.ID, "filter").send_keys("no such words")
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#scene-list li"))
    screenshot = tmp_path / "viewer.png"
    assert browser.save_screenshot(str(screenshot))
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.width >= 1000


def test_the_live_server_refuses_raw_traversal(browsed, live_viewer):
    """Paths sent as written (no client-side normalisation) never reach a file outside the root."""
    url = urllib.parse.urlsplit(live_viewer(browsed[0]))
    up = 16  # enough ``..`` to climb from any temporary folder to /
    for path in (
        "/data/" + "../" * up + "etc/passwd",
        "/data/" + "%2e%2e/" * up + "etc/passwd",
        "/static/" + "../" * up + "etc/passwd",
        "/data//etc/passwd",
        "/static/%2e%2e/server.py",
    ):
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status == 404, path
        assert b"root:" not in body and b"import" not in body


def test_a_count_of_one_is_in_the_singular(tmp_path, browser, live_viewer):
    """The header read "1 scenes"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    write_synthetic_dataset(tmp_path / "data", scenes=1, grid=1, seed=3)
    browser.get(live_viewer(tmp_path / "data"))
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "scene-count").text)
    assert browser.find_element(By.ID, "dataset").text.endswith(" · 1 scene · 1x1 views")
    assert browser.find_element(By.ID, "scene-count").text == "1 of 1 scene"
