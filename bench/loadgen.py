"""wrk, the load generator: one run per measurement, its output parsed into a ``Result``.

Writes that need a unique value per request (channel names) get a generated Lua script: each
wrk thread numbers its requests, and the run's random prefix keeps names unique across runs.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
LATENCY = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.M)
RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")

UNIQUE_POST = """
counter = 0
thread_no = 0
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local name = PREFIX .. "-" .. thread_no .. "-" .. counter
  local item = ROTATE[(counter + thread_no) % #ROTATE + 1]
  return wrk.format("POST", nil, item.headers, (item.body:gsub("__NAME__", name)))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def _lua_rotation(items: list[tuple[dict[str, str], str]]) -> str:
    """ROTATE = {{headers = {...}, body = "..."}, ...}: requests take turns through them."""
    rendered = []
    for headers, body in items:
        pairs = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
        rendered.append(f"{{headers = {{{pairs}}}, body = {_lua_string(body)}}}")
    return "ROTATE = {" + ", ".join(rendered) + "}\n"


# Every run prints the fastest decile and minimum too: on a shared machine the background load
# only ever adds latency, so p10 is the steadiest estimate of what a request costs.
SUMMARY = """
function done(summary, latency, requests)
  io.write(string.format("BENCH p10 %d\\n", latency:percentile(10)))
  io.write(string.format("BENCH min %d\\n", latency.min))
end
"""
EXTRA = re.compile(r"^BENCH (p10|min) (\d+)$", re.M)


class LoadError(RuntimeError):
    """wrk failed, or the server answered errors where the measurement expects successes."""


@dataclass
class Result:
    """One wrk run: throughput and latency percentiles (milliseconds)."""

    name: str
    rps: float
    p10_ms: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    def as_dict(self) -> dict:
        return asdict(self)


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise LoadError("wrk is not installed (bench/run installs it with apt-get install -y wrk).")
    return path


def parse(name: str, output: str) -> Result:
    """wrk's ``--latency`` report as a Result."""
    latencies = {p: float(v) * UNITS[u] for p, v, u in LATENCY.findall(output)}
    rps = RPS.search(output)
    requests = REQUESTS.search(output)
    if rps is None or requests is None:
        raise LoadError(f"could not parse wrk output for {name}:\n{output}")
    if len(latencies) != 4:  # nothing completed: wrk prints no distribution
        latencies = dict.fromkeys(("50", "75", "90", "99"), float("nan"))
    non_2xx = NON_2XX.search(output)
    socket = SOCKET.search(output)
    extra = {k: int(v) / 1000 for k, v in EXTRA.findall(output)}
    return Result(
        name=name,
        rps=float(rps.group(1)),
        p10_ms=extra.get("p10", float("nan")),
        p50_ms=latencies["50"],
        p75_ms=latencies["75"],
        p90_ms=latencies["90"],
        p99_ms=latencies["99"],
        requests=int(requests.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
    )


def run(
    name: str,
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    post_body_template: str | None = None,
    post_rotation: list[tuple[dict[str, str], str]] | None = None,
    allow_errors: bool = False,  # warm-ups: errors and slow first requests do not count
) -> Result:
    """Run wrk against ``url``. With ``post_body_template`` every request POSTs the template
    with ``__NAME__`` replaced by a unique name; ``post_rotation`` gives several (headers,
    template) pairs that successive requests take turns through (e.g. several tenants' keys)."""
    if post_body_template is not None:
        post_rotation = [(dict(headers or {}), post_body_template)]
    command = [
        ensure_wrk(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(duration, 1):g}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    for header, value in (headers or {}).items():
        command += ["-H", f"{header}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=True) as script:
        if post_rotation:
            script.write(f"PREFIX = {_lua_string(f'{name}-{secrets.token_hex(3)}')}\n")
            script.write(_lua_rotation(post_rotation))
            script.write(UNIQUE_POST)
        script.write(SUMMARY)
        script.flush()
        command += ["-s", script.name]
        command.append(url)
        finished = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    if finished.returncode != 0:
        raise LoadError(f"wrk failed for {name}: {finished.stderr or finished.stdout}")
    result = parse(name, finished.stdout)
    if result.requests == 0 and not allow_errors:
        raise LoadError(f"{name}: no request completed")
    if result.non_2xx and not allow_errors:
        raise LoadError(f"{name}: {result.non_2xx} of {result.requests} responses were not 2xx")
    return result
