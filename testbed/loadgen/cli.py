"""`testbed load attack`: a fixed-rate attack with a vegeta-style report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from testbed.loadgen.attack import (
    AttackConfig,
    AttackResult,
    RequestSpec,
    run_attack,
    url_target,
)
from testbed.loadgen.summary import format_vegeta, summarize

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Open-loop HTTP load generator."""


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name, value); the name is checked later, with the other fields."""
    name, sep, value = text.partition(":")
    if not sep:
        raise ValueError(f"header {text!r} must look like 'Name: value'")
    return name, value.strip()


def parse_request(text: str, headers: tuple[tuple[str, str], ...] = ()) -> RequestSpec:
    """'WEIGHT METHOD PATH [@BODY_FILE]' -> RequestSpec (with the common headers)."""
    parts = text.split()
    if len(parts) not in (3, 4) or (len(parts) == 4 and not parts[3].startswith("@")):
        raise ValueError(f"request {text!r} must look like 'WEIGHT METHOD PATH [@BODY_FILE]', "
                         f"e.g. '3 GET /items?page=1' or '1 POST /items @item.json'")
    try:
        weight = float(parts[0])
    except ValueError:
        raise ValueError(f"request {text!r}: weight {parts[0]!r} is not a number") from None
    body = b""
    if len(parts) == 4:
        try:
            body = Path(parts[3][1:]).read_bytes()
        except OSError as exc:
            raise ValueError(f"request {text!r}: cannot read the body file: {exc}") from None
    return RequestSpec(path=parts[2], method=parts[1], headers=headers, body=body,
                       weight=weight)


def build_config(url: str, rate: float, duration: float, timeout: float, max_connections: int,
                 keepalive: bool = True, method: str | None = None,
                 header: list[str] | None = None, host: str | None = None,
                 body: str | None = None, body_file: Path | None = None,
                 request: list[str] | None = None, seed: int = 0) -> AttackConfig:
    """The AttackConfig the options describe; ValueError with a readable message if they are
    inconsistent or a field is invalid."""
    headers = tuple(parse_header(h) for h in header or ())
    if body is not None and body_file is not None:
        raise ValueError("give --body or --body-file, not both")
    requests: tuple[RequestSpec, ...] = ()
    if request:
        if method is not None or body is not None or body_file is not None:
            raise ValueError("--method, --body and --body-file describe the single request; "
                             "with --request give each its method and '@BODY_FILE' instead")
        requests = tuple(parse_request(r, headers) for r in request)
    elif method is not None or headers or body is not None or body_file is not None:
        payload = body.encode() if body is not None else b""
        if body_file is not None:
            payload = body_file.read_bytes()
        requests = (RequestSpec(path=url_target(url), method=method or "GET", headers=headers,
                                body=payload),)
    return AttackConfig(url=url, rate=rate, duration=duration, timeout=timeout,
                        max_connections=max_connections, keepalive=keepalive,
                        requests=requests, host=host, seed=seed)


def _by_request(res: AttackResult) -> str:
    """Per-request counts, for a mix: which kind of request failed is the first question."""
    total = Counter(r.req for r in res.records)
    errors = Counter(r.req for r in res.records if not r.ok)
    lines = ["Requests by kind  [weight, method, path: count, errors]"]
    for i, spec in enumerate(res.requests):
        lines.append(f"  {spec.weight:g} {spec.method} {spec.path}: {total[i]}, {errors[i]}")
    return "\n".join(lines)


def _spec_dict(spec: RequestSpec) -> dict[str, Any]:
    return {"method": spec.method, "path": spec.path, "weight": spec.weight,
            "headers": [list(h) for h in spec.headers], "body_bytes": len(spec.body)}


@app.command()
def attack(
    url: Annotated[str, typer.Option(
        help="Target URL (http:// only). Its path is the request's, unless --request is "
             "given: then only its host and port are used.")],
    rate: Annotated[float, typer.Option(help="Requests per second.")] = 100.0,
    duration: Annotated[float, typer.Option(help="Seconds of sending.")] = 10.0,
    timeout: Annotated[float, typer.Option(help="Per-request timeout in seconds.")] = 30.0,
    max_connections: Annotated[int, typer.Option(help="Connection pool size.")] = 512,
    method: Annotated[str | None, typer.Option(
        help="HTTP method of the single request (default GET; sent as given, case-sensitive)."
    )] = None,
    header: Annotated[list[str] | None, typer.Option(
        "--header", "-H", metavar="'NAME: VALUE'",
        help="'Name: value' added to every request; repeatable. Replaces the default "
             "User-Agent/Accept of the same name. Host, Content-Length, Transfer-Encoding "
             "and Connection are refused (use --host; the length comes from the body).")] = None,
    host: Annotated[str | None, typer.Option(
        help="Host header value (default: the URL's host:port).")] = None,
    body: Annotated[str | None, typer.Option(
        help="Body of the single request (UTF-8), sent with a Content-Length.")] = None,
    body_file: Annotated[Path | None, typer.Option(
        help="Read the single request's body from this file.")] = None,
    request: Annotated[list[str] | None, typer.Option(
        "--request", "-r", metavar="'WEIGHT METHOD PATH'",
        help="'WEIGHT METHOD PATH' or 'WEIGHT METHOD PATH @BODY_FILE': one request of a "
             "weighted mix; repeatable, "
             "e.g. -r '3 GET /items' -r '1 POST /items @item.json' sends ~75% GET, ~25% POST. "
             "Not combinable with --method/--body/--body-file.")] = None,
    seed: Annotated[int, typer.Option(
        help="Seed of the mix's request choice (same seed, same sequence).")] = 0,
    keepalive: Annotated[bool, typer.Option(
        help="Reuse connections (--no-keepalive: one connection per request).")] = True,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write summary + records to this file.")] = None,
) -> None:
    """Send RATE requests per second to URL for DURATION seconds and print a report."""
    try:
        cfg = build_config(url, rate, duration, timeout, max_connections, keepalive, method,
                           header, host, body, body_file, request, seed)
    except (ValueError, OSError) as exc:  # OSError: an unreadable body file
        raise typer.BadParameter(str(exc)) from None
    try:
        res = run_attack(cfg)
    except ValueError as exc:  # bad URL or rate: raised before anything is sent
        raise typer.BadParameter(str(exc)) from None
    summary = summarize(res.records)
    typer.echo(format_vegeta(summary))
    if summary.error_classes:
        typer.echo("Error classes: " + ", ".join(f"{k}:{v}"
                                                 for k, v in summary.error_classes.items()))
    if len(res.requests) > 1:
        typer.echo(_by_request(res))
    if json_out is not None:
        json_out.write_text(json.dumps({
            "summary": summary.to_dict(),
            "started": res.started, "attack_end": res.attack_end, "finished": res.finished,
            "requests": [_spec_dict(s) for s in res.requests],
            "records": [r.to_dict() for r in res.records],
        }))
