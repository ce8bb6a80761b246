"""The dashboard in a real headless Chromium, driven over WebDriver.

Run by tests/it/ui.rs against a real instantops that the Rust test has fed
with statsd, carbon and log traffic through the real client libraries:

    python dashboard.py '{"base": "http://127.0.0.1:PORT", "shots": DIR, ...}'

Each scenario saves a screenshot in `shots`. Any failed expectation, and any
console error on any page, ends the run with a non-zero exit and a message.
With "bench": true it instead times the overview's first render and the
redraw of a 12-panel dashboard and prints the medians as JSON.
"""
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

ARGS = json.loads(sys.argv[1])
BASE = ARGS["base"]
SHOTS = ARGS["shots"]
WAIT = 20


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("IOPS_CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--user-data-dir=" + tempfile.mkdtemp(prefix="iops-chromium-")):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("IOPS_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=opts, service=service)


def api(path, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return json.loads(text) if text else None


class Run:
    def __init__(self, driver):
        self.d = driver
        self.failures = []

    def wait(self, what, probe, timeout=WAIT):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda d: probe())
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (at {self.d.current_url})")

    def css(self, selector):
        return self.d.find_elements(By.CSS_SELECTOR, selector)

    def one(self, selector, what=None):
        return self.wait(what or selector, lambda: (self.css(selector) or [None])[0])

    def query(self):
        return urllib.parse.parse_qs(urllib.parse.urlparse(self.d.current_url).query)

    def console_errors(self):
        return [e for e in self.d.get_log("browser") if e["level"] == "SEVERE"]

    def shot(self, name):
        self.d.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def scenario(self, name, fn):
        started = time.time()
        self.d.get_log("browser")  # drop what earlier scenarios left
        try:
            fn()
            errors = self.console_errors()
            assert not errors, f"console errors: {errors}"
            print(f"ok   {name} ({time.time() - started:.1f}s)", flush=True)
        except Exception as e:  # every failure is reported, then the run fails
            self.failures.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        finally:
            try:
                self.shot(name)
            except Exception as e:
                print(f"     (no screenshot for {name}: {e})", flush=True)

    # -- scenarios ---------------------------------------------------------

    def every_page_loads(self):
        pages = {
            "/": "main[data-drawn] #ingest table",
            "/ui/metrics": ".tree li",
            "/ui/dashboards": "#new-dashboard",
            "/ui/logs": "#log-summary[data-total]",
            "/ui/alerts": "h1",
        }
        for path, ready in pages.items():
            self.d.get(BASE + path)
            self.one(ready, f"{path} to draw ({ready})")
            assert self.d.find_element(By.CSS_SELECTOR, "header nav a[aria-current=page]"), f"{path}: no current page in the nav"
            errors = self.console_errors()
            assert not errors, f"{path}: console errors: {errors}"
            self.shot("page" + path.replace("/", "_"))
        # The overview lists the inputs the test fed, and memory per subsystem.
        self.d.get(BASE + "/")
        table = self.one("main[data-drawn] #ingest table").text
        for name in ("statsd_udp", "carbon_tcp", "json_tcp"):
            assert name in table, f"overview ingest table has no {name}: {table}"
        memory = self.one("#memory table").text
        assert "tsdb series" in memory and "logs index writer" in memory, memory
        assert "of the" in self.one("#memory p").text

    def counter_is_drawn(self):
        counter = ARGS["counter"]
        # Through the tree: click down the nodes to the leaf.
        self.d.get(BASE + "/ui/metrics")
        nodes = counter.split(".")
        for depth, node in enumerate(nodes):
            last = depth == len(nodes) - 1
            kind = "leaf" if last else "branch"
            button = self.wait(f"tree node {node}", lambda: next(
                (b for b in self.css(f".tree button.{kind}") if b.text == node and b.get_attribute("title") == ".".join(nodes[:depth + 1])), None))
            button.click()
        self.wait("the target in the URL", lambda: self.query().get("target") == [counter])
        graph = self.one("#graph[data-points]:not([data-points='0'])", "a graph with points")
        assert int(graph.get_attribute("data-series")) == 1
        assert self.painted("#graph canvas", (59, 130, 246)) >= 8, "no pixels in the series colour on the canvas"
        legend = self.one("#graph table.legend tbody tr").text
        assert counter in legend, legend
        # Function completion from /functions.
        box = self.one("input[aria-label='new target']")
        box.send_keys("sumSer")
        self.wait("sumSeries offered", lambda: any("sumSeries" in li.text for li in self.css("ul.complete li")))
        box.send_keys(Keys.TAB)
        assert box.get_attribute("value") == "sumSeries(", box.get_attribute("value")

    def painted(self, selector, rgb):
        """Pixels of about colour `rgb` on the canvas."""
        return self.d.execute_script("""
            const c = document.querySelector(arguments[0]);
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const [r, g, b] = arguments[1];
            let n = 0;
            for (let i = 0; i < px.length; i += 4)
              if (px[i + 3] > 100 && Math.abs(px[i] - r) < 40 && Math.abs(px[i + 1] - g) < 40 && Math.abs(px[i + 2] - b) < 40) n++;
            return n;""", selector, list(rgb))

    def log_line_is_found(self):
        needle = ARGS["needle"]
        self.d.get(BASE + "/ui/logs?from=-1h")
        box = self.one("#log-query")
        box.clear()
        box.send_keys(needle, Keys.ENTER)
        row = self.wait("the event in the results", lambda: next((r for r in self.css("#events tr.event") if needle in r.text), None))
        assert self.query().get("q") == [needle], self.query()
        assert int(self.one("#log-summary[data-total]").get_attribute("data-total")) >= 1
        row.click()
        detail = self.one("#events tr.detail").text
        assert ARGS["log_host"] in detail, detail
        # The field sidebar: top values of host, click one to filter.
        field = self.wait("host in the fields", lambda: next((b for b in self.css("#fields button.field") if b.text.startswith("host")), None))
        field.click()
        value = self.wait("a host value", lambda: next((b for b in self.css("#fields button.value") if ARGS["log_host"] in b.text), None))
        value.click()
        self.wait("the filter in the query", lambda: "host:" in (self.query().get("q") or [""])[0])
        # Live tail: an event sent now shows up at the top without a search.
        self.one("#tail").click()
        self.wait("the tail on", lambda: self.one("#tail").get_attribute("aria-pressed") == "true")
        fresh = needle + "-tailed"
        deadline = time.time() + WAIT
        while not any(fresh in r.text for r in self.css("#events tr.event")):
            assert time.time() < deadline, "the tailed event never showed"
            # The stream may not be subscribed yet: send again until it shows.
            api("/api/logs", "POST", {"message": "tail " + fresh, "host": ARGS["log_host"]})
            time.sleep(0.5)
        self.one("#tail").click()

    def check_from_the_form(self):
        name = ARGS["check_name"]
        self.d.get(BASE + "/ui/alerts?new=1")
        self.one("#check-name").send_keys(name)
        self.one("#check-target").send_keys(ARGS["counter"])
        self.one("#check-warn").send_keys("100")
        self.one("#check-error").send_keys("200")
        self.one("#check-preview[data-points]", "the live preview")
        self.one("#check-form button[type=submit]").click()
        self.wait("the check's page", lambda: "id" in self.query())
        checks = api("/api/checks")["values"]
        match = [c for c in checks if c["name"] == name]
        assert match, f"{name} not in /api/checks: {[c['name'] for c in checks]}"
        assert match[0]["target"] == ARGS["counter"] and match[0]["warn"] == "100" and match[0]["error"] == "200", match[0]
        assert self.query()["id"] == [match[0]["id"]]
        # Edit it: the form comes back filled in, and the change is stored.
        next(a for a in self.css(".toolbar a") if a.text == "Edit").click()
        warn = self.one("#check-warn")
        self.wait("the form filled in", lambda: self.one("#check-name").get_attribute("value") == name)
        warn.clear()
        warn.send_keys("150")
        self.one("#check-form button[type=submit]").click()
        self.wait("the edit stored", lambda: api("/api/checks/" + match[0]["id"])["warn"] == "150")

    def dashboard_survives_reload(self):
        title = ARGS["dashboard_title"]
        self.d.get(BASE + "/ui/dashboards")
        self.one("#new-dashboard input").send_keys(title)
        self.one("#new-dashboard button").click()
        self.wait("the new dashboard's page", lambda: "id" in self.query())
        dash_id = self.query()["id"][0]
        next(b for b in self.css(".toolbar button") if b.text == "Add panel").click()
        self.one("dialog[open] input[name=panel-title]").send_keys("hits")
        self.one("dialog[open] textarea[name=panel-targets]").send_keys(ARGS["counter"])
        next(b for b in self.css("dialog[open] button") if b.text == "OK").click()
        self.one("#panels .graph[data-points]:not([data-points='0'])", "the panel's graph")
        self.one("#save-dashboard").click()
        self.wait("saved", lambda: self.one("#save-dashboard").text == "Save")
        self.d.refresh()
        heading = self.wait("the panel after a reload", lambda: next((h for h in self.css("#panels .panel h2") if h.text == "hits"), None))
        assert heading
        self.one("#panels .graph[data-points]:not([data-points='0'])", "the panel's graph after a reload")
        stored = api("/api/dashboards/" + urllib.parse.quote(dash_id))
        assert stored["title"] == title and stored["panels"][0]["targets"] == [ARGS["counter"]], stored

    def drag_zooms_and_opens_logs(self):
        target = ARGS["host_series"]
        self.d.get(BASE + "/ui/metrics?" + urllib.parse.urlencode({"target": target, "from": "-30min"}))
        self.one("#graph[data-points]:not([data-points='0'])", "the host series")
        over = self.one("#graph .u-over")
        w = over.size["width"]
        ActionChains(self.d).move_to_element_with_offset(over, -w // 4, 0).click_and_hold() \
            .move_by_offset(w // 3, 0).release().perform()
        self.wait("from and until in the URL as epoch seconds", lambda: self.query().get("from", [""])[0].isdigit())
        f, u = int(self.query()["from"][0]), int(self.query()["until"][0])
        assert 60 < u - f < 30 * 60, (f, u)
        self.one("#graph[data-points]", "the zoomed graph")
        self.d.back()
        self.wait("Back undoes the zoom", lambda: self.query().get("from") == ["-30min"])
        # Metrics to logs: one click from the graph to its hosts' logs.
        logs = self.wait("the logs button", lambda: next((b for b in self.css(".tools button") if b.text == "Logs of this window"), None))
        logs.click()
        self.wait("the logs page", lambda: urllib.parse.urlparse(self.d.current_url).path == "/ui/logs")
        q = self.query().get("q", [""])[0]
        assert q == "host:" + ARGS["log_host"], q
        self.wait("the host's event", lambda: any(ARGS["needle"] in r.text for r in self.css("#events tr.event")))

    def template_variable(self):
        saved = api("/api/dashboards", "POST", {
            "title": "hosts " + ARGS["log_host"],
            "variables": [{"name": "host", "query": "servers.*"}],
            "panels": [{"title": "cpu", "targets": ["servers.$host.cpu.user"]}],
        })
        self.d.get(BASE + "/ui/dashboards?id=" + urllib.parse.quote(saved["id"]))
        select = self.one("select[aria-label='variable host']")
        option = self.wait("the host among the options", lambda: next(
            (o for o in select.find_elements(By.TAG_NAME, "option") if o.get_attribute("value") == ARGS["log_host"]), None))
        option.click()
        self.wait("the choice in the URL", lambda: self.query().get("var-host") == [ARGS["log_host"]])
        legend = self.wait("the panel drawn for that host", lambda: next(
            (r for r in self.css("#panels table.legend tbody tr") if ARGS["host_series"] in r.text), None))
        assert legend

    def big_dashboard_draws(self):
        d = self.big_dashboard()
        self.d.get(BASE + "/ui/dashboards?id=" + d)
        grid = self.one("#panels[data-drawn-ms]", "12 panels drawn")
        graphs = self.css("#panels .graph[data-series='20']")
        assert len(graphs) == 12, f"{len(graphs)} panels with 20 series"
        return grid

    def big_dashboard(self):
        panels = [{"title": f"panel {p}", "targets": [f"{ARGS['big_prefix']}.p{p}.*"]} for p in range(12)]
        saved = api("/api/dashboards", "POST", {"title": "twelve by twenty " + str(time.time()), "from": "-1h", "panels": panels})
        return urllib.parse.quote(saved["id"])

    # -- bench -------------------------------------------------------------

    def bench(self, runs=9):
        overview = []
        for _ in range(runs):
            self.d.get("about:blank")
            self.d.get(BASE + "/")
            self.one("main[data-drawn]")
            overview.append(self.d.execute_script("return performance.getEntriesByName('overview-drawn')[0].startTime"))
        d = self.big_dashboard()
        self.d.get(BASE + "/ui/dashboards?id=" + d)
        first = float(self.one("#panels[data-drawn-ms]").get_attribute("data-drawn-ms"))
        redraws = []
        for i in range(runs):
            self.d.execute_script("document.getElementById('panels').removeAttribute('data-drawn-ms')")
            next(b for b in self.css(".range button") if b.text == "Apply").click()
            redraws.append(float(self.one("#panels[data-drawn-ms]").get_attribute("data-drawn-ms")))
        out = {
            "overview_first_render_ms": {"median": statistics.median(overview), "all": [round(x) for x in overview]},
            "dashboard_first_draw_ms": first,
            "dashboard_redraw_ms": {"median": statistics.median(redraws), "all": redraws},
        }
        if ARGS.get("peer"):
            for name, base in (("graphite_web_png_redraw_ms", ARGS["peer"]), ("instantops_png_redraw_ms", BASE)):
                # A page of the same origin: Chromium keeps other pages from loading loopback images.
                self.d.get(base + "/version")
                times = [self.png_panels(base) for _ in range(runs)]
                assert min(times) > 0, f"{name}: a PNG failed to load"
                out[name] = {"median": statistics.median(times), "all": [round(t) for t in times]}
        print(json.dumps(out))

    def png_panels(self, base):
        """graphite-web's dashboard redraw: each of 12 panels an <img> of /render (PNG), all loaded."""
        return self.d.execute_async_script("""
            const [base, prefix, done] = arguments;
            document.body.replaceChildren();
            const t0 = performance.now();
            let n = 0, bad = 0;
            for (let p = 0; p < 12; p++) {
              const img = new Image();
              img.onload = () => { if (++n === 12) done(bad ? -1 : performance.now() - t0); };
              img.onerror = () => { bad++; if (++n === 12) done(-1); };
              img.src = `${base}/render?target=${prefix}.p${p}.*&from=-1h&width=440&height=250&_=${Math.random()}`;
              document.body.append(img);
            }""", base, ARGS["big_prefix"])


def main():
    os.makedirs(SHOTS, exist_ok=True)
    d = browser()
    try:
        run = Run(d)
        if ARGS.get("bench"):
            run.bench()
            return 0
        run.scenario("every_page_loads", run.every_page_loads)
        run.scenario("counter_is_drawn", run.counter_is_drawn)
        run.scenario("log_line_is_found", run.log_line_is_found)
        run.scenario("check_from_the_form", run.check_from_the_form)
        run.scenario("dashboard_survives_reload", run.dashboard_survives_reload)
        run.scenario("drag_zooms_and_opens_logs", run.drag_zooms_and_opens_logs)
        run.scenario("template_variable", run.template_variable)
        run.scenario("big_dashboard_draws", run.big_dashboard_draws)
        if run.failures:
            print("failed: " + ", ".join(run.failures))
            return 1
        return 0
    finally:
        d.quit()


if __name__ == "__main__":
    sys.exit(main())
