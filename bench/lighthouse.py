"""Lighthouse performance of the shopper app's pages that show pictures (issue 17: ≥ 95 on each).

    python bench/lighthouse.py [--runs 3] [--port 8463]

Starts the single-machine mode (`python -m server`) on a fresh SHANGQUAN_VAR_DIR, so the seed content and its
pictures are loaded as a new user's first start loads them, installs Lighthouse (pinned) with npm into a
temporary folder, and runs its mobile preset (slow 4G, 4× CPU slow-down) on home, a district, a shop and the
深圳手信 page with Debian's /usr/bin/chromium. It prints the median score of each page and its LCP, TBT and
CLS. Lighthouse's TBT moves with whatever else the machine is doing: read the load average it prints too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = "lighthouse@12.2.3"
PAGES = ["/", "/d/huaqiangbei", "/m/dl-langshang-womenswear", "/gifts"]


def install(folder: Path) -> Path:
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder), LIGHTHOUSE],
                   check=True, stdin=subprocess.DEVNULL)
    return folder / "node_modules" / ".bin" / "lighthouse"


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            sys.exit(f"the app stopped with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    sys.exit("the app did not start in 300 s")


def run_once(lighthouse: Path, url: str, out: Path) -> dict[str, float]:
    for attempt in range(3):  # Lighthouse now and then fails to record its trace (NO_NAVSTART): run it again
        done = subprocess.run([str(lighthouse), url, "--only-categories=performance", "--quiet", "--output=json",
                               f"--output-path={out}", "--chrome-flags=--headless=new --no-sandbox"],
                              env={**os.environ, "CHROME_PATH": "/usr/bin/chromium"}, stdin=subprocess.DEVNULL)
        if done.returncode == 0:
            break
        print(f"  lighthouse failed on {url} (attempt {attempt + 1}); again")
    else:
        sys.exit(f"lighthouse failed three times on {url}")
    report = json.loads(out.read_text())
    audits = report["audits"]
    return {"score": report["categories"]["performance"]["score"] * 100,
            "lcp_s": audits["largest-contentful-paint"]["numericValue"] / 1000,
            "tbt_ms": audits["total-blocking-time"]["numericValue"],
            "cls": audits["cumulative-layout-shift"]["numericValue"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8463)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sq-lighthouse-") as tmp:
        lighthouse = install(Path(tmp) / "npm")
        env = {**os.environ, "PORT": str(args.port), "SHANGQUAN_VAR_DIR": str(Path(tmp) / "var")}
        env.pop("MONGODB_URL", None)
        env.pop("REDIS_URL", None)
        base = f"http://127.0.0.1:{args.port}"
        with open(Path(tmp) / "app.log", "wb") as log:
            app = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(base, app)
            for path in PAGES:  # first visits draw the content pictures; measure the app, not that
                run_once(lighthouse, base + path, Path(tmp) / "warm.json")
            print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores here)")
            for path in PAGES:
                runs = [run_once(lighthouse, base + path, Path(tmp) / "run.json") for _ in range(args.runs)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                scores = ", ".join(f"{r['score']:.0f}" for r in runs)
                print(f"{path:32} performance {med['score']:.0f} (runs {scores})  LCP {med['lcp_s']:.1f} s  "
                      f"TBT {med['tbt_ms']:.0f} ms  CLS {med['cls']:.3f}")
            print(f"load average after: {os.getloadavg()[0]:.2f}")
        finally:
            app.terminate()
            app.wait(timeout=60)


if __name__ == "__main__":
    main()
