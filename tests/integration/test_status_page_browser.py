"""The status page in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`, driven
through selenium) on the emulated 3-pod cluster.

The agents run with an API token and HA_STATUS_AUTH=token, so the page first asks for the token (typed
with the keyboard, kept in the tab's sessionStorage). Opened on a non-leader's agent, the page must show
the leader's view: the MAIN and the replicas as the API reports them, the preStop record of a replica
that was restarted before, light and dark colours. A switchover is then triggered through the API and the
page must show the new MAIN within 5 s without a reload (a bounded poll here, not a benchmark: the page
itself polls every 2 s). A screenshot is saved in the test's directory, and to $MGHA_SCREENSHOT when set
(that is how docs/img/status-page.png is made).

`make test` installs chromium and chromium-driver with apt-get when they are missing and it runs as root
on Debian (Makefile target `browser-deps`); elsewhere this test skips and says why.

Must never: leave Chromium or chromedriver running (their process group is killed on teardown), load
anything but the agent's own address, or wait without a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.cluster import ClusterConfig, SimCluster
from tests.support.cluster import healthy_cluster

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

TOKEN = "tok-browser-test-5d2c"
HEALTHY_S = 60.0
PAGE_WAIT_S = 10.0  # first render (token form, first poll)
SWITCH_SEEN_S = 5.0  # the bound for the new MAIN to appear without a reload
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1400")


def _binaries() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium and chromedriver are not installed: `make test` installs them as root on "
                    "Debian (apt-get install chromium chromium-driver); elsewhere install them to run this")
    return chromium, driver


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    _binaries()  # skip before starting a cluster for nothing
    cfg = ClusterConfig(replicas=3, seed=61,
                        extra_agent_env={"HA_API_TOKEN": TOKEN, "HA_STATUS_AUTH": "token"})
    with healthy_cluster(tmp_path_factory.mktemp("status-page"), cfg, HEALTHY_S) as c:
        yield c


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium, driver_path = _binaries()
    opts = Options()
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    opts.binary_location = chromium
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(driver_path, log_output=str(tmp_path / "chromedriver.log"),
                      popen_kw={"start_new_session": True})  # its own group, with every Chromium process
    try:
        driver = webdriver.Chrome(options=opts, service=service)
    except WebDriverException as exc:
        _kill_group(service)
        pytest.skip(f"chromium does not start here: {exc.msg}")
    try:
        yield driver
    finally:
        with contextlib.suppress(WebDriverException):
            driver.quit()
        _kill_group(service)


def _kill_group(service: Service) -> None:
    proc = getattr(service, "process", None)
    if proc is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


# ---- helpers ------------------------------------------------------------------------------------------


def api(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc
    except urllib.error.HTTPError as exc:  # the answer's body says why
        raise AssertionError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from exc


def switchover_retrying(agent_url: str, attempts: int = 5, pause_s: float = 3.0) -> dict[str, Any]:
    """POST /api/v1/switchover as an operator does: a 503 means "not now, retry" (the MAIN may be busy
    with the re-created pod's re-registration: DROP REPLICA of its old, silent address waits on
    Memgraph's replication timeouts). At most `attempts` tries, `pause_s` apart."""
    url = agent_url + "/api/v1/switchover"
    for n in range(1, attempts + 1):
        try:
            return api("POST", url, {})
        except AssertionError as exc:
            if ": 503 " not in str(exc) or n == attempts:
                raise
            print(f"\nswitchover attempt {n}: {exc}; retrying in {pause_s}s")
            time.sleep(pause_s)
    raise AssertionError("unreachable")


def page_roles(driver: Any) -> dict[str, str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#pods tbody tr[data-pod]")
    return {r.get_attribute("data-pod"): r.get_attribute("data-role") for r in rows}


def text_of(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def background(driver: Any) -> str:
    return str(driver.execute_script("return getComputedStyle(document.body).backgroundColor"))


def save_screenshot(driver: Any, path: Path) -> None:
    assert driver.save_screenshot(str(path)), path
    extra = os.environ.get("MGHA_SCREENSHOT")
    if extra:
        shutil.copyfile(path, extra)


def healthy_status(c: SimCluster) -> dict[str, Any]:
    c.wait_for(lambda: c.healthy() and all(c.pod_ready(p) for p in c.pod_names()), HEALTHY_S, "healthy")
    return c.status()


# ---- the test ------------------------------------------------------------------------------------------


def test_page_shows_the_leaders_view_and_a_switchover_without_a_reload(
    cluster: SimCluster, browser: Any, tmp_path: Path
) -> None:
    wait_page = cluster.wait_for  # a bounded poll (what failed is in its message)
    st = healthy_status(cluster)["cluster"]
    restarted = next(p for p in cluster.pod_names() if p not in (st["main"], st["sync_replica"]))  # ASYNC
    old_uid = cluster.pod_uid(restarted)
    cluster.delete_pod(restarted)  # its preStop hook leaves a record the page must show
    cluster.wait_for(lambda: cluster.pod_uid(restarted) not in (None, old_uid), HEALTHY_S,
                     f"{restarted} re-created")
    doc = healthy_status(cluster)
    st = doc["cluster"]
    viewer = next(p for p in cluster.pod_names() if p != st["leader"])
    browser.get(cluster.runtime(viewer).agent_url + "/")

    # HA_STATUS_AUTH=token: the page asks once; the token is typed and sent with Enter (keyboard only)
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"  # first Tab: the skip link
    wait_page(lambda: browser.find_element(By.ID, "token-form").is_displayed(), PAGE_WAIT_S, "the token form")
    browser.find_element(By.ID, "token").send_keys(TOKEN + Keys.ENTER)
    assert browser.execute_script("return sessionStorage.getItem('memgraph-ha-token')") == TOKEN
    assert TOKEN not in browser.current_url

    # the leader's view, as the API reports it
    roles = {p["name"]: p["role"] for p in doc["pods"]}
    wait_page(lambda: text_of(browser, "record-main") == st["main"] and page_roles(browser) == roles,
              PAGE_WAIT_S, f"MAIN {st['main']} and the roles {roles}")
    assert text_of(browser, "answered-by") == f"{st['leader']} via {viewer}"
    assert text_of(browser, "record-leader") == st["leader"]
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    wait_page(lambda: "SUCCESS" in browser.find_element(
        By.XPATH, f"//table[@id='prestop']/tbody/tr[td[1]='{restarted}']").text, PAGE_WAIT_S,
        f"the preStop record of {restarted}")

    # a switchover through the API; the page follows without a reload
    browser.execute_script("window.__noReload = 'still the same page'")
    result = switchover_retrying(cluster.runtime(viewer).agent_url)
    new_main = result["new_main"]
    assert result["outcome"] == "switchover-done" and new_main not in (None, st["main"]), result
    after = (new_main, {**roles, new_main: "main", st["main"]: "replica"})
    took = wait_page(lambda: (text_of(browser, "record-main"), page_roles(browser)) == after, SWITCH_SEEN_S,
                     f"the new MAIN {new_main}")
    assert browser.execute_script("return window.__noReload") == "still the same page"
    history = browser.find_element(By.ID, "history").text
    assert f"switchover {st['main']} {new_main}" in history, history
    assert text_of(browser, "data-age").endswith(" s")
    print(f"\nthe page showed the new MAIN {new_main} {took:.2f}s after the switchover answered")
    save_screenshot(browser, tmp_path / "status-page.png")

    # readable in light and dark (prefers-color-scheme), and nothing broke the page's policy
    light = background(browser)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    assert (light, background(browser)) == ("rgb(255, 255, 255)", "rgb(13, 17, 23)")
    assert browser.save_screenshot(str(tmp_path / "status-page-dark.png"))
    problems = [e["message"] for e in browser.get_log("browser")
                if "Content Security Policy" in e["message"] or "Uncaught" in e["message"]]
    assert not problems, problems
