"""CLI: `alb-controller run ...` (the controller) and `alb-controller gen-webhook-manifests`.

Every run flag can also come from an environment variable ALBC_<FLAG_IN_CAPS>.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

import typer
import yaml

from controller import certs as certs_mod
from controller.config import Config, RealAWSRefused, check_aws_endpoint
from controller.log import configure, get_logger

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Minimal aws-load-balancer-controller (TargetGroupBinding, IP targets).",
)


def _env(name: str) -> str:
    return "ALBC_" + name.upper().replace("-", "_")


@app.command()
def run(
    aws_endpoint_url: str = typer.Option(
        ...,
        "--aws-endpoint-url",
        envvar=_env("aws-endpoint-url"),
        help="ELBv2 endpoint (required; the fake AWS).",
    ),
    allow_real_aws: bool = typer.Option(
        False,
        "--allow-real-aws",
        envvar=_env("allow-real-aws"),
        help="Permit an endpoint on a real AWS domain.",
    ),
    region: str = typer.Option("us-east-1", "--region", envvar=_env("region")),
    kubeconfig: str = typer.Option(
        "",
        "--kubeconfig",
        envvar=_env("kubeconfig"),
        help="Run out of cluster with this kubeconfig.",
    ),
    no_pod_watch: bool = typer.Option(
        False,
        "--no-pod-watch",
        envvar=_env("no-pod-watch"),
        help="Pre-v3.4: pod changes (ContainersReady) trigger no reconcile.",
    ),
    backoff_requeue: bool = typer.Option(
        False,
        "--backoff-requeue",
        envvar=_env("backoff-requeue"),
        help="Pre-v2.10: pending-gate requeue uses exponential backoff (5 ms .. 1000 s).",
    ),
    legacy_endpoints: bool = typer.Option(
        False,
        "--legacy-endpoints",
        envvar=_env("legacy-endpoints"),
        help="Read core/v1 Endpoints instead of EndpointSlices.",
    ),
    disable_fail_open: bool = typer.Option(
        False,
        "--disable-endpoints-fail-open",
        envvar=_env("disable-endpoints-fail-open"),
        help="Turn off the EndpointsFailOpen feature gate.",
    ),
    requeue_duration: float = typer.Option(
        15.0,
        "--targetgroupbinding-requeue-duration",
        envvar=_env("targetgroupbinding-requeue-duration"),
        help="Seconds between polls while a readiness gate is pending.",
    ),
    workers: int = typer.Option(
        3, "--workers", envvar=_env("workers"), help="MaxConcurrentReconciles."
    ),
    sync_period: float = typer.Option(36000.0, "--sync-period", envvar=_env("sync-period")),
    health_cache_ttl: float = typer.Option(
        300.0,
        "--target-health-cache-ttl",
        envvar=_env("target-health-cache-ttl"),
        help="Seconds a target group's health listing is cached (0 disables).",
    ),
    metrics_port: int = typer.Option(8080, "--metrics-port", envvar=_env("metrics-port")),
    webhook_port: int = typer.Option(9443, "--webhook-port", envvar=_env("webhook-port")),
    webhook_cert_dir: str = typer.Option(
        "/tmp/k8s-webhook-server/serving-certs",
        "--webhook-cert-dir",
        envvar=_env("webhook-cert-dir"),
    ),
    disable_webhook: bool = typer.Option(
        False, "--disable-webhook", envvar=_env("disable-webhook")
    ),
    leader_elect: bool = typer.Option(False, "--leader-elect", envvar=_env("leader-elect")),
    leader_election_namespace: str = typer.Option(
        "", "--leader-election-namespace", envvar=_env("leader-election-namespace")
    ),
    leader_election_id: str = typer.Option(
        "alb-controller-leader", "--leader-election-id", envvar=_env("leader-election-id")
    ),
    log_level: str = typer.Option("info", "--log-level", envvar=_env("log-level")),
) -> None:
    """Run the controller until SIGTERM/SIGINT."""
    configure(log_level)
    log = get_logger("main")
    try:
        check_aws_endpoint(aws_endpoint_url, allow_real_aws)
    except (RealAWSRefused, ValueError) as e:
        log.error("refusing to start", error=str(e))
        raise typer.Exit(2) from e
    cfg = Config(
        aws_endpoint_url=aws_endpoint_url,
        allow_real_aws=allow_real_aws,
        region=region,
        kubeconfig=kubeconfig or None,
        no_pod_watch=no_pod_watch,
        backoff_requeue=backoff_requeue,
        legacy_endpoints=legacy_endpoints,
        fail_open=not disable_fail_open,
        requeue_seconds=requeue_duration,
        workers=workers,
        sync_period_seconds=sync_period,
        target_health_cache_ttl=health_cache_ttl,
        metrics_port=metrics_port,
        webhook_port=webhook_port,
        webhook_cert_dir=webhook_cert_dir,
        enable_webhook=not disable_webhook,
        leader_elect=leader_elect,
        leader_election_namespace=leader_election_namespace or _own_namespace(),
        leader_election_id=leader_election_id,
        pod_name=os.environ.get("POD_NAME", socket.gethostname()),
    )
    run_controller(cfg)


def _own_namespace() -> str:
    p = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return p.read_text().strip() if p.exists() else "alb-system"


def run_controller(cfg: Config) -> None:
    """Assemble caches, AWS client, reconciler, workers, webhook and metrics; block."""
    from controller.aws import Boto3ELBv2, TargetsManager
    from controller.kube import KubeCluster, load_api_client
    from controller.leader import LeaderElector
    from controller.manager import Controller
    from controller.metrics import serve_metrics
    from controller.reconcile import Reconciler
    from controller.webhook import WebhookServer

    log = get_logger("main")
    log.info(
        "starting",
        aws_endpoint_url=cfg.aws_endpoint_url,
        no_pod_watch=cfg.no_pod_watch,
        backoff_requeue=cfg.backoff_requeue,
        legacy_endpoints=cfg.legacy_endpoints,
        requeue_seconds=cfg.requeue_seconds,
        workers=cfg.workers,
    )
    api_client = load_api_client(cfg.kubeconfig)
    kube = KubeCluster(api_client, legacy_endpoints=cfg.legacy_endpoints)
    targets = TargetsManager(
        Boto3ELBv2(cfg.aws_endpoint_url, cfg.region), cfg.target_health_cache_ttl
    )
    ctl = Controller(kube, Reconciler(kube, targets, cfg), cfg)
    kube.add_handler(ctl.handle)
    started = threading.Event()
    serve_metrics(
        cfg.metrics_port, healthy=lambda: not started.is_set() or ctl.alive(), ready=kube.synced
    )
    kube.start()
    if not kube.wait_synced(120):
        log.warning("caches not synced after 120 s; continuing, informers keep retrying")
    if cfg.enable_webhook:
        if Path(cfg.webhook_cert_dir, "tls.crt").exists():
            try:
                WebhookServer(kube, cfg.webhook_port, cfg.webhook_cert_dir).start()
                log.info("webhook serving", port=cfg.webhook_port)
            except (OSError, ValueError) as e:  # bad cert files: run on, webhooks off
                log.error("webhook not started", error=repr(e), cert_dir=cfg.webhook_cert_dir)
        else:
            log.warning("webhook disabled: no tls.crt", cert_dir=cfg.webhook_cert_dir)

    def start() -> None:
        ctl.enqueue_all()
        ctl.start()
        started.set()
        log.info("workers started", workers=cfg.workers)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    elector = None
    if cfg.leader_elect:
        elector = LeaderElector(
            api_client, cfg.leader_election_namespace, cfg.leader_election_id, cfg.pod_name
        )
        threading.Thread(target=elector.run, args=(start, lambda: os._exit(1)), daemon=True).start()
    else:
        start()
    stop.wait()
    log.info("shutting down")
    ctl.stop()
    if elector:
        elector.stop()
        elector.release()
    kube.stop()


@app.command("gen-webhook-manifests")
def gen_webhook_manifests(
    namespace: str = typer.Option("alb-system", "--namespace"),
    service: str = typer.Option("alb-controller-webhook", "--service"),
    failure_policy: str = typer.Option("Ignore", "--failure-policy", help="Ignore or Fail"),
    secret_name: str = typer.Option("alb-controller-webhook-tls", "--secret-name"),
    out: Path = typer.Option(..., "--out", help="Directory to write the YAML files into."),  # noqa: B008
) -> None:
    """Generate a CA + serving cert and write the Secret and webhook configurations."""
    if failure_policy not in ("Ignore", "Fail"):
        typer.echo("--failure-policy must be Ignore or Fail", err=True)
        raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    c = certs_mod.generate(service, namespace)
    docs = certs_mod.render_manifests(c, namespace, service, failure_policy, secret_name)
    for fname, doc in docs.items():
        (out / fname).write_text(yaml.safe_dump(doc, sort_keys=False))
        typer.echo(str(out / fname))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="alb-controller")


if __name__ == "__main__":
    main()
