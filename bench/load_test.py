"""Load test: N concurrent browser sessions click through the catalog and the recommender while one session keeps
a live-demo run going. Prints (and optionally writes) one JSON object with p50/p95 response times and errors.

    .venv/bin/python bench/load_test.py --sessions 8 --duration-s 60 --json-out /tmp/load.json

It starts its own `streamlit run app.py` on a free 127.0.0.1 port (env ELLM_DEMO_MODEL=tiny unless --real-model,
with its cache and run history in a temporary folder), drives headless Debian Chromium (one browser, one isolated
context per session, so every session is its own Streamlit session and websocket), and stops by itself after
--duration-s. Traffic goes to 127.0.0.1 only.

Response time of one interaction = from the action (click, Enter) until the script run it triggered has finished
(the app root's data-test-script-state went to "running" and back to "notRunning"), Streamlit's status widget
is hidden and the element the interaction should produce is visible. Errors: exception boxes, timeouts and
failed interactions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench.common import percentile  # noqa: E402

# The browser flags, port picking and health polling are the browser tests' own.
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port, wait_healthy  # noqa: E402

# Count script runs in the page, two ways. (1) The app root's data-test-script-state: a page switch re-mounts the
# root (a new node, not an attribute change), so it is re-read on every DOM change and on a 20 ms timer.
# (2) Streamlit's websocket: every ForwardMsg whose top-level field 6 (script_finished, see ForwardMsg.proto)
# is set marks a finished run. A loaded browser may batch "started" and "finished" into one render, so (1) alone
# can miss a short run; (2) cannot.
RUN_OBSERVER = """
window.__runsStarted = 0; window.__runsFinished = 0; window.__scriptFinishedMsgs = 0; window.__lastFinishedAt = 0;
let lastState = null;
const checkState = () => {
  const root = document.querySelector('[data-testid="stApp"]');
  const state = root ? root.getAttribute('data-test-script-state') : null;
  if (state === lastState) return;
  if (state === 'running') window.__runsStarted += 1;
  if (lastState === 'running' && state === 'notRunning') window.__runsFinished += 1;
  lastState = state;
};
new MutationObserver(checkState).observe(document, {subtree: true, childList: true, attributes: true,
                                                    attributeFilter: ['data-test-script-state']});
setInterval(checkState, 20);
const hasScriptFinished = (buffer) => {   // walk the top-level protobuf fields of one ForwardMsg
  const b = new Uint8Array(buffer); let i = 0;
  const varint = () => { let x = 0, shift = 0, c; do { c = b[i++]; x += (c & 0x7f) * 2 ** shift; shift += 7; }
                         while ((c & 0x80) && i < b.length); return x; };
  while (i < b.length) {
    const tag = varint(), field = Math.floor(tag / 8), wire = tag & 7;
    if (field === 6 && wire === 0) return true;
    if (wire === 0) varint(); else if (wire === 2) i += varint(); else if (wire === 1) i += 8;
    else if (wire === 5) i += 4; else return false;
  }
  return false;
};
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (event) => {
      if (event.data instanceof ArrayBuffer && hasScriptFinished(event.data)) {
        window.__scriptFinishedMsgs += 1; window.__lastFinishedAt = performance.now();
      }
    });
  }
};
"""
# Check the condition every 25 ms, not on every animation frame (Playwright's default): per-frame polling in nine
# waiting tabs cost the browsers CPU that the two cores share with the server.
POLL_MS = 25
COUNTERS = "[window.__runsStarted, window.__scriptFinishedMsgs, performance.now()]"
FINISHED = "[window.__scriptFinishedMsgs, window.__lastFinishedAt]"
SEARCHES = [("gptq", "GPTQ", "gptq"), ("lora", "LoRA", "lora"), ("flash attention", "FlashAttention", "flashattention"),
            ("awq", "AWQ", "awq"), ("speculative decoding", "Speculative Decoding", "speculative-decoding")]
GPUS = ["rtx-4090", "a100-80gb", "h100-sxm", "l4", "t4"]



def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (Linux /proc), MiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def machine_busy_idle() -> tuple[int, int]:
    """Busy and idle CPU ticks of the whole machine so far (/proc/stat; iowait counts as idle)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return sum(ticks[:8]) - idle, idle


def process_role(pid: int, server_pid: int, cmdline: str) -> str:
    if pid == server_pid:
        return "app server"
    if pid == os.getpid():
        return "load driver"
    if "chromium" in cmdline:
        return "browser renderers" if "--type=renderer" in cmdline else "browser other"
    return "playwright driver" if "playwright" in cmdline else "other"


def cpu_by_role(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of this process, its descendants (server, Playwright) and every Chromium process, by
    role. (Chromium's zygote double-forks its renderers, so they are not descendants; this machine runs no other
    Chromium while the load test does.)"""
    parents, usage, cmdlines = {}, {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:   # the process ended meanwhile
            continue
        pid = int(entry.name)
        parents[pid], cmdlines[pid] = int(fields[1]), cmdline
        usage[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grew = {os.getpid()} | {pid for pid, cmdline in cmdlines.items() if "chromium" in cmdline}, True
    while grew:
        new = {pid for pid, parent in parents.items() if parent in tree and pid not in tree}
        tree |= new
        grew = bool(new)
    roles: dict[str, float] = {}
    for pid in tree:
        role = process_role(pid, server_pid, cmdlines[pid])
        roles[role] = roles.get(role, 0.0) + usage[pid]
    return roles


def cpu_summary(start, end, window_s: float, interactions_per_s: float) -> dict:
    """Where the CPU went while the sessions clicked: average cores per role, the machine's busy share and the CPU
    one interaction cost (all roles, the live run included)."""
    (roles_start, machine_start), (roles_end, machine_end) = start, end
    cores = {role: round((cpu - roles_start.get(role, 0.0)) / window_s, 2) for role, cpu in sorted(roles_end.items())}
    busy, idle = (e - s for e, s in zip(machine_end, machine_start, strict=True))
    return {"cores_by_role": cores, "machine_busy_share": round(busy / max(1, busy + idle), 2),
            "cpu_s_per_interaction": round(sum(cores.values()) / interactions_per_s, 2) if interactions_per_s else None}


class Recorder:
    def __init__(self, think_s: float = 0.0):
        self.think_s = think_s   # mean pause after each interaction (uniform in [0.5, 1.5] x think_s)
        self.rngs: dict[int, random.Random] = {}
        self.timings: dict[str, list[float]] = {}
        # action -> the websocket's script_finished message: the server's part, without the page's rendering
        self.server_timings: dict[str, list[float]] = {}
        self.errors: list[dict] = []
        self.live_runs: list[float] = []

    def ok(self, page: str, action: str, ms: float) -> None:
        self.timings.setdefault(f"{page}/{action}", []).append(ms)

    async def think(self, session: int) -> None:
        """A user's pause before the next action: reading the result. 0 = click again at once (a stress test)."""
        if self.think_s > 0:
            rng = self.rngs.setdefault(session, random.Random(1000 + session))
            await asyncio.sleep(rng.uniform(0.5, 1.5) * self.think_s)

    def error(self, session: int, page: str, action: str, kind: str, detail: str) -> None:
        self.errors.append({"session": session, "page": page, "action": action, "kind": kind,
                            "detail": detail[:600]})


async def wait_for_run(tab, before: list[int], expect, timeout_ms: float, done_js: str = "false") -> None:
    """Wait until the script run the action caused has finished and the expected element shows.

    A run counts as seen when the root's script state went to running after the action, when a script_finished
    message arrived after it, or when `done_js` (the URL state the catalog records) is true; then the app must be
    idle again.
    """
    await tab.wait_for_function(
        "([n, doneJs]) => (window.__runsStarted > n[0] || window.__scriptFinishedMsgs > n[1] || "
        "Function('return ' + doneJs)()) && "
        "document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state') === 'notRunning'",
        arg=[before, done_js], timeout=timeout_ms, polling=POLL_MS)
    await tab.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout_ms)
    await expect.first.wait_for(state="visible", timeout=timeout_ms)


async def timed(rec: Recorder, session: int, tab, page: str, action: str, act, expect, timeout_ms: float,
                done_js: str = "false") -> bool:
    """Run one interaction, record its response time or its error, then pause as the user reads the result."""
    try:
        return await _timed(rec, session, tab, page, action, act, expect, timeout_ms, done_js)
    finally:
        await rec.think(session)


async def _timed(rec, session, tab, page, action, act, expect, timeout_ms, done_js) -> bool:
    try:
        before = await tab.evaluate(COUNTERS)
        start = time.perf_counter()
        await act()
        await wait_for_run(tab, before, expect, timeout_ms, done_js)
        elapsed = (time.perf_counter() - start) * 1000
        if await tab.locator('[data-testid="stException"]').count():
            rec.error(session, page, action, "exception", await tab.locator('[data-testid="stException"]')
                      .first.inner_text())
            return False
        rec.ok(page, action, elapsed)
        finished, finished_at = await tab.evaluate(FINISHED)
        if finished > before[1]:
            rec.server_timings.setdefault(page, []).append(finished_at - before[2])
        return True
    except Exception as exc:   # noqa: BLE001  (a load test records every failure kind and goes on)
        kind = "timeout" if "Timeout" in type(exc).__name__ else "failed"
        detail = f"{type(exc).__name__}: {str(exc)[:300]} at {tab.url}"
        boxes = tab.locator('[data-testid="stException"]')
        if await boxes.count():   # the expected element never came because the page raised
            kind, detail = "exception", await boxes.first.inner_text()
        rec.error(session, page, action, kind, detail)
        return False


async def open_app(tab, url: str, timeout_ms: float) -> None:
    """Open the home page. (A deep link into a freshly started server can show Streamlit's "Page not found"
    dialog, which makes the page inert, so sessions start at the root and move through the sidebar.)"""
    await tab.goto(url, timeout=timeout_ms)
    await tab.get_by_role("heading", name="Efficient-LLM Explorer").first.wait_for(timeout=timeout_ms)
    await tab.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout_ms)
    if await tab.get_by_text("Page not found").count():
        await tab.keyboard.press("Escape")
    if await tab.locator('[data-testid="stException"]').count():
        raise RuntimeError("the home page shows an exception box")


async def nav(tab, label: str):
    await tab.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=label).first.click()


async def pick(tab, key: str, text: str):
    """Choose an option in a keyed st.selectbox by typing it."""
    box = tab.locator(f".st-key-{key} input")
    await box.click()
    await box.fill(text)
    await tab.get_by_role("option", name=text, exact=True).click()   # Enter picks the first fuzzy match


async def type_number(tab, key: str, value: int):
    box = tab.locator(f".st-key-{key} input")
    await box.fill(str(value))
    await box.press("Enter")


def choose(rng, options: list, session_last: dict, key: str, default=None):
    """A random option that differs from the widget's current value (an unchanged value triggers no run)."""
    value = rng.choice([o for o in options if o not in (session_last.get(key), default)])
    session_last[key] = value
    return value


def url_param_is(name: str, value: str | None) -> str:
    """JS: the page URL's query parameter `name` equals `value` (null: absent)."""
    return f"new URLSearchParams(location.search).get({json.dumps(name)}) === {json.dumps(value)}"


async def catalog_round(rec, session, tab, rng, timeout_ms, last) -> None:
    counted = tab.get_by_text("matching techniques")
    if not await timed(rec, session, tab, "catalog", "open page", lambda: nav(tab, "Catalog"), counted, timeout_ms,
                       "location.pathname.endsWith('/catalog')"):
        return
    query, name, technique_id = choose(rng, SEARCHES, last, "search")

    async def search():
        box = tab.locator(".st-key-cat_query input")
        await box.fill(query)
        await box.press("Enter")

    toggle = tab.locator(".st-key-cat_oss label").first
    oss_on = await tab.locator(".st-key-cat_oss input").first.is_checked(timeout=timeout_ms)
    steps = [("search", search, counted, url_param_is("q", query)),
             ("filter", toggle.click, counted, url_param_is("open_source", None if oss_on else "1")),
             ("filter", toggle.click, counted, url_param_is("open_source", "1" if oss_on else None)),
             ("open technique", lambda: pick(tab, "cat_technique", f"{name} ({technique_id})"),
              tab.get_by_role("heading", name="Citation"), url_param_is("id", technique_id))]
    for action, act, expect, done_js in steps:   # a failed step leaves the page in an unknown state: end the round
        if not await timed(rec, session, tab, "catalog", action, act, expect, timeout_ms, done_js):
            return


async def recommender_round(rec, session, tab, rng, timeout_ms, last) -> None:
    card = tab.locator(".st-key-rec_stack_card")   # the stack card, whatever its verdict
    if not await timed(rec, session, tab, "recommender", "open page", lambda: nav(tab, "Recommender"), card,
                       timeout_ms, "location.pathname.endsWith('/recommender')"):
        return
    batch = choose(rng, [1, 4, 16, 64], last, "rec_batch", default=1)
    prompt_len = choose(rng, [256, 1024, 4096], last, "rec_prompt_len", default=512)
    gpu = choose(rng, GPUS, last, "rec_gpu_id", default="a100-80gb")
    steps = [("change input", lambda: type_number(tab, "rec_batch", batch)),
             ("change input", lambda: type_number(tab, "rec_prompt_len", prompt_len)),
             ("get plan (GPU)", lambda: pick(tab, "rec_gpu_id", gpu))]
    for action, act in steps:
        if not await timed(rec, session, tab, "recommender", action, act, card, timeout_ms):
            return


async def user_session(rec, browser, url, session, deadline, timeout_ms) -> None:
    rng = random.Random(session)
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    await context.add_init_script(RUN_OBSERVER)
    tab = await context.new_page()
    try:
        await open_app(tab, url, timeout_ms)
        rounds = [catalog_round, recommender_round][:: 1 if session % 2 else -1]
        turn, last = 0, {}
        while time.monotonic() < deadline:   # alternate pages, so each round starts with a real page change
            await rounds[turn % 2](rec, session, tab, rng, timeout_ms, last)
            turn += 1
    except Exception as exc:   # noqa: BLE001
        rec.error(session, "home", "start", "failed", f"{type(exc).__name__}: {exc}")
    finally:
        await context.close()


async def live_session(rec, browser, url, deadline, timeout_ms, state) -> None:
    """Keep a live-demo quantization run going until the deadline (one run after another)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    await context.add_init_script(RUN_OBSERVER)
    tab = await context.new_page()
    try:
        await open_app(tab, url, timeout_ms)
        await nav(tab, "Live demo")
        await tab.get_by_role("heading", name="Live demo").first.wait_for(timeout=timeout_ms)
        await tab.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout_ms)
        if await tab.locator('[data-testid="stException"]').count():
            rec.error(-1, "live_demo", "open page", "exception",
                      await tab.locator('[data-testid="stException"]').first.inner_text())
        state["ready"].set()
        while time.monotonic() < deadline:
            before = await tab.evaluate(COUNTERS)
            start = time.perf_counter()
            state["running"] = True
            await tab.locator(".st-key-live_quant_run button").click(timeout=timeout_ms)
            await wait_for_run(tab, before, tab.get_by_text("Quantization: done"), 10 * timeout_ms)
            state["running"] = False
            rec.live_runs.append(time.perf_counter() - start)
            if await tab.locator('[data-testid="stException"]').count():
                rec.error(-1, "live_demo", "run", "exception", "exception box on the live demo page")
    except Exception as exc:   # noqa: BLE001
        rec.error(-1, "live_demo", "run", "timeout" if "Timeout" in type(exc).__name__ else "failed",
                  f"{type(exc).__name__}: {exc}")
    finally:
        state["running"] = False
        state["ready"].set()
        await context.close()


async def drive(url: str, args, server_pid: int, run_times: Path) -> dict:
    from playwright.async_api import async_playwright

    rec = Recorder(args.think_s)
    timeout_ms = args.timeout_s * 1000
    memory = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        state = {"ready": asyncio.Event(), "running": False}
        live_task = None
        if not args.no_live_run:
            live_deadline = time.monotonic() + args.duration_s + 600   # stopped below once the users are done
            live_task = asyncio.create_task(live_session(rec, browser, url, live_deadline, timeout_ms, state))
            await asyncio.wait_for(state["ready"].wait(), timeout=args.timeout_s * 4)
        start, start_epoch = time.monotonic(), time.time()
        usage_start = cpu_by_role(server_pid), machine_busy_idle()
        usage_end = None
        deadline = start + args.duration_s
        users = [asyncio.create_task(user_session(rec, browser, url, i, deadline, timeout_ms))
                 for i in range(args.sessions)]
        live_busy_s, last = 0.0, time.monotonic()
        while not all(u.done() for u in users):
            await asyncio.sleep(0.5)
            now = time.monotonic()
            live_busy_s += (now - last) if state["running"] else 0.0
            last = now
            memory.append(rss_mib(server_pid))
            if usage_end is None and now >= deadline:   # before the sessions close their tabs (and renderers)
                usage_end, window_s = (cpu_by_role(server_pid), machine_busy_idle()), now - start
        wall_s = time.monotonic() - start
        if usage_end is None:
            usage_end, window_s = (cpu_by_role(server_pid), machine_busy_idle()), wall_s
        if live_task is not None:
            live_task.cancel()
            await asyncio.gather(live_task, return_exceptions=True)
        await browser.close()

    pages = {}
    for page in ("catalog", "recommender"):
        values = [v for k, vs in rec.timings.items() if k.startswith(page + "/") for v in vs]
        pages[page] = {"n": len(values), "p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95),
                       "max_ms": round(max(values), 1) if values else None}
    actions = {k: {"n": len(v), "p50_ms": percentile(v, 0.5), "p95_ms": percentile(v, 0.95)}
               for k, v in sorted(rec.timings.items())}
    # Until the run's script_finished message reached the page: the server's share of each response time.
    server_round_trip = {k: {"n": len(v), "p50_ms": percentile(v, 0.5), "p95_ms": percentile(v, 0.95)}
                         for k, v in sorted(rec.server_timings.items())}
    return {
        "sessions": args.sessions, "think_s": args.think_s, "duration_s": args.duration_s, "wall_s": round(wall_s, 1),
        "model": "real (embedded SmolLM2-135M)" if args.real_model else "tiny", "live_run": not args.no_live_run,
        "live_runs_completed": len(rec.live_runs),
        "live_run_s_median": round(statistics.median(rec.live_runs), 2) if rec.live_runs else None,
        "live_run_in_progress_share": round(live_busy_s / wall_s, 2) if not args.no_live_run else 0.0,
        "pages": pages, "actions": actions, "server_round_trip": server_round_trip,
        "interactions": sum(p["n"] for p in pages.values()),
        "errors": len(rec.errors), "error_details": rec.errors[:20],
        "server_rss_mib_peak": round(max(memory), 1) if memory else None,
        "server_rss_mib_end": round(memory[-1], 1) if memory else None,
        "cpu_count": os.cpu_count(),
        **cpu_summary(usage_start, usage_end, window_s, sum(p["n"] for p in pages.values()) / wall_s),
        "server_script_runs": script_run_summary(run_times, (start_epoch, start_epoch + window_s)),
    }


def script_run_summary(path: Path, window: tuple[float, float]) -> dict:
    """The app's own timing of each script run that ended while the sessions clicked (app.py writes one JSON line
    per run to $ELLM_RUN_TIMES): per page, wall and script-thread CPU ms. This is the server's part of a response
    without the browser's, and wall >> CPU means the run waited (for a core or the GIL)."""
    runs: dict[str, list[dict]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            run = json.loads(line)
            if window[0] <= run["at"] <= window[1]:
                runs.setdefault(run["page"], []).append(run)
    return {page: {"n": len(rs), "wall_p50_ms": percentile([r["wall_ms"] for r in rs], 0.5),
                   "wall_p95_ms": percentile([r["wall_ms"] for r in rs], 0.95),
                   "cpu_p50_ms": percentile([r["cpu_ms"] for r in rs], 0.5)} for page, rs in sorted(runs.items())}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent browser sessions (default 8)")
    parser.add_argument("--duration-s", type=float, default=60.0, help="how long the sessions click (default 60)")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="per-interaction timeout (default 60)")
    parser.add_argument("--think-s", type=float, default=0.0,
                        help="mean pause after each interaction, uniform in [0.5, 1.5] x this (default 0: a stress "
                             "test that clicks again as soon as the page has answered)")
    parser.add_argument("--real-model", action="store_true", help="live demo on the embedded SmolLM2, not tiny")
    parser.add_argument("--no-live-run", action="store_true", help="no live-demo run in the background")
    parser.add_argument("--json-out", help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 64 or not 1 <= args.duration_s <= 3600 or not 0 <= args.think_s <= 600:
        parser.error("--sessions must be 1-64, --duration-s 1-3600 and --think-s 0-600")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="ellm-load-") as data:
        env = {**os.environ, "ELLM_CACHE_DIR": os.environ.get("ELLM_CACHE_DIR", str(Path(data) / "cache")),
               "ELLM_HISTORY_DB": str(Path(data) / "runs.sqlite3"), "HF_HUB_OFFLINE": "1",
               "ELLM_RUN_TIMES": str(Path(data) / "run_times.jsonl")}
        if not args.real_model:
            env["ELLM_DEMO_MODEL"] = "tiny"
        command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
                   "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats",
                   "false", "--server.fileWatcherType", "none"]
        log_path = Path(data) / "streamlit.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
            try:
                wait_healthy(url, server, 90)
                result = asyncio.run(drive(url, args, server.pid, Path(env["ELLM_RUN_TIMES"])))
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
        log_text = log_path.read_text(errors="replace")
        result["server_tracebacks"] = log_text.count("Traceback")
        if result["server_tracebacks"] and args.json_out:
            Path(args.json_out).with_suffix(".server.log").write_text(log_text)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return 0 if result["errors"] == 0 and not result["server_tracebacks"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
