"""Fake AWS benchmark: data plane vs nginx, added latency, health-check jitter, API cost.

    .venv/bin/python -m bench.fakeaws_bench [--quick]

Everything runs on loopback, every loop is bounded. Targets are an nginx instance returning
200 from memory (so neither proxy is limited by slow targets); the reference proxy is a second
nginx with as many worker processes as the fake ALB has data-plane workers (1, then one per
core), proxying with upstream keep-alive to the same targets. Memory: the engine's and the
workers' RSS after 100,000 requests and after 1,000,000 more. Throughput uses `ab -k`
(apache2-utils) when present, otherwise a Python closed-loop client. Latency uses an
open-loop asyncio client (fixed arrival rate, latency measured from the intended send time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from testbed.poll import TimedOut, poll

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until `pred` is truthy; connection errors while a server starts mean "not yet"."""
    try:
        return poll(pred, timeout, interval=0.1, tolerate=(OSError,))
    except TimedOut as exc:
        raise RuntimeError(f"timeout waiting for {what}{exc.detail()}") from None


# ---- processes -----------------------------------------------------------------------------
@contextmanager
def nginx(conf: str, tmp: Path, name: str) -> Iterator[None]:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    d = tmp / name
    d.mkdir()
    (d / "nginx.conf").write_text(conf.replace("@DIR@", str(d)))
    proc = subprocess.Popen([exe, "-p", str(d), "-c", str(d / "nginx.conf"),
                             "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def nginx_conf(servers: str, workers: int = 1) -> str:
    return f"""worker_processes {workers};
pid @DIR@/nginx.pid;
error_log @DIR@/error.log crit;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path @DIR@/body; proxy_temp_path @DIR@/proxy;
  fastcgi_temp_path @DIR@/fcgi; uwsgi_temp_path @DIR@/uwsgi; scgi_temp_path @DIR@/scgi;
  keepalive_requests 1000000;
  {servers}
}}
"""


@contextmanager
def fakeaws(min_interval: float = 5.0, workers: int = 1) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "testbed"), "fakeaws", "serve", "--port", str(port),
                             "--min-health-check-interval", str(min_interval),
                             "--dataplane-workers", str(workers),
                             "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "ready" not in line:
        raise RuntimeError(f"fakeaws did not start: {line!r}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def client(url: str, service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=url,
                        aws_access_key_id="bench", aws_secret_access_key="bench",
                        config=Config(retries={"max_attempts": 1}))


def make_alb(url: str, target_ports: list[int], interval: int = 5) -> tuple[str, int]:
    ec2, elbv2 = client(url, "ec2"), client(url, "elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    lb_arn = elbv2.create_load_balancer(Name="bench", Subnets=subnets)[
        "LoadBalancers"][0]["LoadBalancerArn"]
    tg_arn = elbv2.create_target_group(
        Name="bench", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
        HealthCheckPath="/", HealthCheckIntervalSeconds=interval, HealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    port = free_port()
    elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    for i in range(0, len(target_ports), 100):
        elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[
            {"Id": "127.0.0.1", "Port": p} for p in target_ports[i:i + 100]])
    return tg_arn, port


def wait_healthy(url: str, tg_arn: str, n: int, timeout: float = 60) -> None:
    elbv2 = client(url, "elbv2")
    wait_until(lambda: sum(d["TargetHealth"]["State"] == "healthy" for d in
                           elbv2.describe_target_health(TargetGroupArn=tg_arn)[
                               "TargetHealthDescriptions"]) == n, timeout, "targets healthy")


# ---- load ----------------------------------------------------------------------------------
def ab(url: str, n: int, c: int) -> float:
    exe = shutil.which("ab")
    if exe:
        out = subprocess.run([exe, "-q", "-k", "-n", str(n), "-c", str(c), url],
                             capture_output=True, text=True, timeout=300).stdout
        m = re.search(r"Requests per second:\s+([\d.]+)", out)
        failed = re.search(r"Failed requests:\s+(\d+)", out)
        non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
        if failed and int(failed.group(1)) or non2xx:
            print(f"  warning: ab saw failures on {url}", file=sys.stderr)
        return float(m.group(1)) if m else 0.0
    return asyncio.run(_closed_loop(url, n, c))


async def _closed_loop(url: str, n: int, c: int) -> float:
    host, port, path = _split(url)
    left = [n]

    async def worker() -> None:
        r, w = await asyncio.open_connection(host, port)
        while left[0] > 0:
            left[0] -= 1
            await _one(r, w, host, path)
        w.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    return n / (time.perf_counter() - t0)


def _split(url: str) -> tuple[str, int, str]:
    m = re.match(r"http://([^:/]+):(\d+)(/.*)?", url)
    assert m
    return m.group(1), int(m.group(2)), m.group(3) or "/"


async def _one(r: asyncio.StreamReader, w: asyncio.StreamWriter, host: str, path: str) -> int:
    w.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await r.readuntil(b"\r\n\r\n")
    m = re.search(rb"content-length:\s*(\d+)", head, re.I)
    if m:
        await r.readexactly(int(m.group(1)))
    return int(head.split(b" ", 2)[1])


async def _open_loop(url: str, rate: int, seconds: float) -> tuple[list[float], int]:
    """Fixed arrival rate; latency from the intended send time; keep-alive connection pool."""
    host, port, path = _split(url)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    lat: list[float] = []
    errors = [0]
    loop = asyncio.get_running_loop()

    async def fire(intended: float) -> None:
        conn = idle.pop() if idle else await asyncio.open_connection(host, port)
        try:
            code = await _one(*conn, host, path)
            if code != 200:
                errors[0] += 1
            lat.append(loop.time() - intended)
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError):
            errors[0] += 1

    n = int(rate * seconds)
    t0 = loop.time() + 0.05
    tasks = []
    for i in range(n):
        when = t0 + i / rate
        delay = when - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(fire(when)))
    await asyncio.gather(*tasks)
    for _, w in idle:
        w.close()
    return lat, errors[0]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


# ---- API load ------------------------------------------------------------------------------
def _auth() -> str:
    return ("AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/elasticloadbalancing/"
            "aws4_request, SignedHeaders=host, Signature=0")


def api_hammer(url: str, tg_arn: str, total: int, threads: int,
               max_seconds: float = 1e9) -> tuple[float, int]:
    """`total` DescribeTargetHealth calls over `threads` keep-alive connections (bounded by
    count and by `max_seconds`)."""
    import http.client
    from urllib.parse import urlencode

    host, port, _ = _split(url)
    body = urlencode({"Action": "DescribeTargetHealth", "Version": "2015-12-01",
                      "TargetGroupArn": tg_arn}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": _auth()}
    per = total // threads
    errors = [0]
    done = [0]
    stop_at = time.monotonic() + max_seconds

    def run() -> None:
        c = http.client.HTTPConnection(host, port, timeout=30)
        for _ in range(per):
            if time.monotonic() > stop_at:
                break
            done[0] += 1
            c.request("POST", "/", body=body, headers=headers)
            resp = c.getresponse()
            data = resp.read()
            if resp.status != 200 or b"TargetHealthDescriptions" not in data:
                errors[0] += 1
        c.close()

    t0 = time.perf_counter()
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0] / (time.perf_counter() - t0), errors[0]


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_testbed/stats", timeout=30) as r:
        return dict(json.loads(r.read()))


def engine_rss_kb(url: str) -> int:
    return int(stats(url)["engine"]["rss_kb"])


def plane_rss_kb(url: str) -> int:
    """The engine's RSS plus its data-plane workers'."""
    eng = stats(url)["engine"]
    return int(eng["rss_kb"]) + sum(int(w["rss_kb"]) for w in eng["workers"])


# ---- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k API calls, shorter runs")
    ap.add_argument("--skip-jitter", action="store_true")
    args = ap.parse_args(argv)
    api_calls = 10_000 if args.quick else 100_000
    n_ab = 20_000 if args.quick else 50_000
    lat_seconds = 2.0 if args.quick else 4.0
    lat_rounds = 3
    res: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="fakeaws-bench-"))
    t1, t2 = free_port(), free_port()
    targets = nginx_conf(f"""server {{ listen 127.0.0.1:{t1}; location / {{ return 200 "ok"; }} }}
  server {{ listen 127.0.0.1:{t2}; location / {{ return 200 "ok"; }} }}""")
    cores = len(os.sched_getaffinity(0))
    print(f"cpus={cores} load={os.getloadavg()[0]:.1f} quick={args.quick}")
    with nginx(targets, tmp, "targets"):
        # Throughput: nginx and the fake ALB with the same number of worker processes.
        for workers in sorted({1, cores}):
            px = free_port()
            proxy = nginx_conf(f"""upstream t {{ server 127.0.0.1:{t1}; server 127.0.0.1:{t2};
    keepalive 128; }}
  server {{ listen 127.0.0.1:{px}; location / {{ proxy_pass http://t;
    proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For $remote_addr; }} }}""", workers)
            with nginx(proxy, tmp, f"proxy{workers}"), fakeaws(workers=workers) as api:
                url = f"http://127.0.0.1:{px}/"
                wait_until(lambda u=url: urllib.request.urlopen(u).status == 200, 10, "nginx")
                tg_arn, lport = make_alb(api, [t1, t2])
                wait_healthy(api, tg_arn, 2)
                alb = f"http://127.0.0.1:{lport}/"
                ab(alb, 2000, 10)  # warm-up
                ab(f"http://127.0.0.1:{px}/", 2000, 10)
                for c in (1, 50):
                    rn = ab(f"http://127.0.0.1:{px}/", n_ab, c)
                    ra = ab(alb, n_ab, c)
                    res[f"throughput_w{workers}_c{c}"] = {
                        "workers": workers, "nginx_rps": round(rn), "alb_rps": round(ra),
                        "ratio": round(ra / rn, 3)}
                    print(f"throughput workers={workers} c={c}: nginx {rn:.0f} rps, fake ALB "
                          f"{ra:.0f} rps, ratio {ra / rn:.2f}", flush=True)

    with nginx(targets, tmp, "targets2"), fakeaws(workers=cores) as api:
        tg_arn, lport = make_alb(api, [t1, t2])
        wait_healthy(api, tg_arn, 2)
        alb = f"http://127.0.0.1:{lport}/"
        # Open loop at 1,000 rps, alternating direct / via the ALB / via the ALB while the API
        # serves DescribeTargetHealth flat out (other process); each p99 is the median over
        # rounds, since one scheduler hiccup on a shared 2-core machine dominates a single p99.
        p99s: dict[str, list[float]] = {"direct": [], "alb": [], "alb_api": []}
        p50s: dict[str, list[float]] = {"direct": [], "alb": [], "alb_api": []}
        errors = 0
        for _ in range(lat_rounds):
            for key, url in (("direct", f"http://127.0.0.1:{t1}/"), ("alb", alb),
                             ("alb_api", alb)):
                hammer = None
                if key == "alb_api":
                    hammer = subprocess.Popen(
                        [sys.executable, "-c", "import sys; from bench.fakeaws_bench import "
                         "api_hammer; api_hammer(sys.argv[1], sys.argv[2], 100000, 4, "
                         "float(sys.argv[3]))", api, tg_arn, str(lat_seconds + 1)],
                        cwd=Path(__file__).resolve().parents[1])
                    time.sleep(0.5)
                lat, err = asyncio.run(_open_loop(url, 1000, lat_seconds))
                if hammer is not None:
                    hammer.wait(60)
                errors += err
                p99s[key].append(pct(lat, .99) * 1e3)
                p50s[key].append(pct(lat, .5) * 1e3)
        med = {k: statistics.median(v) for k, v in p99s.items()}
        res["latency_1000rps"] = {
            "rounds": lat_rounds, "seconds_each": lat_seconds,
            "direct_p50_ms": round(statistics.median(p50s["direct"]), 3),
            "alb_p50_ms": round(statistics.median(p50s["alb"]), 3),
            "direct_p99_ms": round(med["direct"], 3), "alb_p99_ms": round(med["alb"], 3),
            "added_p99_ms": round(med["alb"] - med["direct"], 3),
            "alb_under_api_load_p99_ms": round(med["alb_api"], 3),
            "added_p99_under_api_load_ms": round(med["alb_api"] - med["direct"], 3),
            # The quietest round estimates the intrinsic cost when neighbours are noisy.
            "added_p99_best_round_ms": round(min(p99s["alb"]) - min(p99s["direct"]), 3),
            "added_p99_under_api_load_best_round_ms": round(
                min(p99s["alb_api"]) - min(p99s["direct"]), 3),
            "p99_per_round_ms": {k: [round(x, 2) for x in v] for k, v in p99s.items()},
            "errors": errors,
        }
        print(f"latency @1000 rps: {res['latency_1000rps']}", flush=True)

        rss0 = stats(api)["api"]["rss_kb"]
        cps, errs = api_hammer(api, tg_arn, api_calls // 10, 4)
        rss1 = stats(api)["api"]["rss_kb"]
        t0 = time.perf_counter()
        cps2, errs2 = api_hammer(api, tg_arn, api_calls - api_calls // 10, 4)
        rss2 = stats(api)["api"]["rss_kb"]
        res["api"] = {"describe_target_health_calls": api_calls, "threads": 4,
                      "calls_per_s": round((api_calls - api_calls // 10)
                                           / (time.perf_counter() - t0)),
                      "errors": errs + errs2, "api_rss_mb_start": round(rss0 / 1024, 1),
                      "api_rss_mb_after_10pct": round(rss1 / 1024, 1),
                      "api_rss_mb_end": round(rss2 / 1024, 1),
                      "engine_rss_mb": round(engine_rss_kb(api) / 1024, 1)}
        print(f"api: {res['api']}", flush=True)

        # Memory over 1,000,000 requests (after 100,000 to warm pools and allocators).
        n_mem = 100_000 if args.quick else 1_000_000
        ab(alb, 100_000, 50)
        rss_a = plane_rss_kb(api)
        t0 = time.perf_counter()
        ab(alb, n_mem, 50)
        rss_b = plane_rss_kb(api)
        res["memory"] = {"requests": n_mem, "seconds": round(time.perf_counter() - t0, 1),
                         "data_plane_rss_mb_before": round(rss_a / 1024, 1),
                         "data_plane_rss_mb_after": round(rss_b / 1024, 1),
                         "growth_ratio": round(rss_b / rss_a, 3)}
        print(f"memory: {res['memory']}", flush=True)

    if not args.skip_jitter:
        res["health_check_jitter"] = jitter(rounds=3)
        print(f"health check jitter: {res['health_check_jitter']}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    lat_r = res["latency_1000rps"]
    print("\nRESULTS (goal in brackets)")
    for key, r in res.items():
        if key.startswith("throughput_"):
            c = key.rsplit("_c", 1)[1]
            print(f"  throughput ratio vs nginx, {r['workers']} worker(s) each, c={c}: "
                  f"{r['ratio']:.2f} [>= 0.5]")
    m = res["memory"]
    print(f"  data-plane RSS over {m['requests']} requests: {m['data_plane_rss_mb_before']} -> "
          f"{m['data_plane_rss_mb_after']} MB (x{m['growth_ratio']}) [flat]")
    print(f"  added p99 @1000 rps (median of {lat_r['rounds']} rounds): "
          f"{lat_r['added_p99_ms']:.2f} ms [<= 2 ms]; best round "
          f"{lat_r['added_p99_best_round_ms']:.2f} ms; with API load: median "
          f"{lat_r['added_p99_under_api_load_ms']:.2f} ms, best round "
          f"{lat_r['added_p99_under_api_load_best_round_ms']:.2f} ms")
    if "health_check_jitter" in res:
        print(f"  health-check jitter p99, 1000 targets @5 s: "
              f"{res['health_check_jitter']['p99_ms']:.1f} ms [<= 100 ms]")
    print(f"  API: {res['api']['calls_per_s']} DescribeTargetHealth/s; API RSS "
          f"{res['api']['api_rss_mb_after_10pct']} -> {res['api']['api_rss_mb_end']} MB "
          f"after {api_calls} calls")
    print(json.dumps(res))


def jitter(rounds: int = 3, n: int = 1000) -> dict[str, Any]:
    """1,000 targets at the AWS minimum interval (5 s): how late each check starts."""
    code = f"from testbed.fakeaws.testing import serve_many; serve_many('127.0.0.1', {n})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    ports = json.loads(proc.stdout.readline())
    try:
        with fakeaws() as api:
            tg_arn, _ = make_alb(api, ports, interval=5)
            wait_healthy(api, tg_arn, n, timeout=60)
            urllib.request.urlopen(api + "/_testbed/stats?clear=1", timeout=30).read()
            time.sleep(5 * rounds + 0.5)  # bounded: `rounds` full intervals
            s = stats(api)["engine"]
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"targets": n, "checks": s["checks"], "p50_ms": round(s["lateness_p50"] * 1e3, 2),
            "p99_ms": round(s["lateness_p99"] * 1e3, 2),
            "max_ms": round(s["lateness_max"] * 1e3, 2)}


if __name__ == "__main__":
    main()
