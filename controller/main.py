"""CLI: `alb-controller run ...` (the controller) and `alb-controller gen-webhook-manifests`.

The run flags, their defaults, help and ALBC_<FLAG_IN_CAPS> environment variables are
generated from the Config declaration in controller/config.py.
"""

from __future__ import annotations

import inspect
import os
import signal
import socket
import threading
from dataclasses import MISSING, asdict
from pathlib import Path
from typing import Any, get_type_hints

import typer
import yaml

from controller import certs as certs_mod
from controller import presets
from controller.config import (
    Config,
    RealAWSRefused,
    check_aws_endpoint,
    cli_default,
    flags,
    format_duration,
    parse_duration,
)
from controller.log import configure, get_logger

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Minimal aws-load-balancer-controller (TargetGroupBinding, IP targets).",
)


def _duration(value: Any) -> float:
    """Option parser for flags declared duration=True; typer also hands it the float default."""
    return float(value) if isinstance(value, int | float) else parse_duration(str(value))


def _choice(choices: tuple[str, ...]) -> Any:
    def parse(value: Any) -> str:
        if str(value) not in choices:
            raise typer.BadParameter(f"{value!r}: expected one of {', '.join(choices)}")
        return str(value)

    return parse


def _run_parameters() -> list[inspect.Parameter]:
    """One typer option per Config switch: name, help, default and env var all come from the
    field's declaration in controller/config.py."""
    hints = get_type_hints(Config)
    params = []
    for f, fl in flags():
        default = cli_default(f, fl)
        parser = _duration if fl.duration else _choice(fl.choices) if fl.choices else None
        opt = typer.Option(
            ... if default is MISSING else default,
            fl.options,
            envvar=fl.envvar,
            help=fl.help + (" [default: the --behave-like release's]" if fl.preset else ""),
            parser=parser,
            metavar="DURATION" if fl.duration else "|".join(fl.choices) or None,
            show_default=False
            if fl.preset
            else format_duration(default)
            if fl.duration
            else True,
        )
        annotation: Any = bool if fl.inverted else hints[f.name]
        if fl.preset:
            annotation = annotation | None
        params.append(
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=annotation
            )
        )
    return params


def run(**values: Any) -> None:
    """Run the controller until SIGTERM/SIGINT."""
    try:
        cfg = Config.from_flags(values, pod_name=os.environ.get("POD_NAME", socket.gethostname()))
    except ValueError as e:
        typer.echo(f"alb-controller: {e}", err=True)
        raise typer.Exit(2) from e
    configure(cfg.log_level)
    log = get_logger("main")
    try:
        check_aws_endpoint(cfg.aws_endpoint_url, cfg.allow_real_aws)
    except (RealAWSRefused, ValueError) as e:
        log.error("refusing to start", error=str(e))
        raise typer.Exit(2) from e
    if not cfg.leader_election_namespace:
        cfg.leader_election_namespace = _own_namespace()
    run_controller(cfg)


# typer reads a command's options from its signature; this one is generated from Config.
run.__signature__ = inspect.Signature(_run_parameters())  # type: ignore[attr-defined]
app.command()(run)


def _own_namespace() -> str:
    p = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return p.read_text().strip() if p.exists() else "alb-system"


def run_controller(cfg: Config) -> None:
    """Assemble caches, AWS client, reconciler, workers, webhook and metrics; block."""
    from controller.aws import Boto3ELBv2, TargetsManager
    from controller.kube import KubeCluster, load_api_client
    from controller.leader import LeaderElector
    from controller.manager import Manager
    from controller.metrics import serve_metrics
    from controller.reconcile import Reconciler
    from controller.webhook import WebhookServer

    log = get_logger("main")
    log.info("starting", modelled_release=presets.modelled(cfg.behave_like), **asdict(cfg))
    api_client = load_api_client(cfg.kubeconfig)
    kube = KubeCluster(
        api_client,
        legacy_endpoints=not cfg.endpoint_slices,
        ingress=cfg.enable_ingress,
        pod_delay=cfg.pod_cache_delay_seconds,
        namespace=cfg.watch_namespace,
    )
    targets = TargetsManager(
        Boto3ELBv2(cfg.aws_endpoint_url, cfg.region), cfg.target_health_cache_ttl
    )
    mgr = Manager(kube, Reconciler(kube, targets, cfg), cfg)
    kube.add_handler(mgr.handle)
    ing_mgr = _ingress_manager(cfg, kube) if cfg.enable_ingress else None
    if ing_mgr is not None:
        kube.add_handler(ing_mgr.handle)
    started = threading.Event()

    def healthy() -> bool:
        if not started.is_set():
            return True
        return mgr.alive() and (ing_mgr is None or ing_mgr.alive())

    # Ready once the caches are synced and the webhooks answer: the TargetGroupBinding
    # webhooks are failurePolicy Fail, so a Ready pod must not refuse bindings.
    webhook_tried = threading.Event()
    serve_metrics(
        cfg.metrics_port, healthy=healthy, ready=lambda: kube.synced() and webhook_tried.is_set()
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
    webhook_tried.set()

    def start() -> None:
        mgr.enqueue_all()
        mgr.start()
        if ing_mgr is not None:
            ing_mgr.enqueue_all()
            ing_mgr.start()
        started.set()
        log.info(
            "workers started",
            workers=cfg.workers,
            ingress_workers=cfg.ingress_workers if ing_mgr is not None else 0,
        )

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
    mgr.stop()
    if ing_mgr is not None:
        ing_mgr.stop()
    if elector:
        elector.stop()
        elector.release()
    kube.stop()


def _boto_client(service: str, cfg: Config) -> Any:
    from controller.aws import make_client

    return make_client(service, cfg.aws_endpoint_url, cfg.region)


def _ingress_manager(cfg: Config, kube: Any) -> Any:
    """Ingress mode: GroupReconciler over the Deployer, behind its own queue and workers."""
    from controller.ingress.build import BuildOptions
    from controller.ingress.deploy import Deployer
    from controller.ingress.handlers import IngressManager
    from controller.ingress.reconcile import GroupReconciler
    from controller.queue import ExponentialBackoff

    deployer = Deployer(
        _boto_client("elbv2", cfg),
        cfg.cluster_name,
        ec2_client=_boto_client("ec2", cfg),
        subnets=[s.strip() for s in cfg.ingress_subnets.split(",") if s.strip()],
        vpc_id=cfg.vpc_id or None,
    )
    reconciler = GroupReconciler(
        kube,
        deployer,
        BuildOptions(cluster_name=cfg.cluster_name),
        ingress_class=cfg.ingress_class,
    )
    return IngressManager(
        kube,
        reconciler,
        ingress_class=cfg.ingress_class,
        workers=cfg.ingress_workers,
        sync_period_seconds=cfg.sync_period_seconds,
        backoff=ExponentialBackoff(cfg.backoff_base_seconds, cfg.backoff_max_seconds),
    )


@app.command("gen-webhook-manifests")
def gen_webhook_manifests(
    namespace: str = typer.Option("alb-system", "--namespace"),
    service: str = typer.Option("alb-controller-webhook", "--service"),
    behave_like: str = typer.Option(
        presets.LATEST, "--behave-like", help="Release whose pod webhook failurePolicy to use."
    ),
    failure_policy: str | None = typer.Option(
        None,
        "--failure-policy",
        help="Pod webhook failurePolicy, Ignore or Fail [default: the --behave-like release's:"
        " Fail before v2.12.0, Ignore since]",
    ),
    tgb_failure_policy: str = typer.Option(
        "Fail", "--tgb-failure-policy", help="TargetGroupBinding webhooks' failurePolicy."
    ),
    secret_name: str = typer.Option("alb-controller-webhook-tls", "--secret-name"),
    watch_namespace: str = typer.Option(
        "", "--watch-namespace", help="Answer for this namespace only (a controller run with"
        " the same --watch-namespace)."),
    name_suffix: str = typer.Option(
        "", "--name-suffix", help="Appended to the webhook configurations' names (one set per"
        " controller instance)."),
    out: Path = typer.Option(..., "--out", help="Directory to write the YAML files into."),  # noqa: B008
) -> None:
    """Generate a CA + serving cert and write the Secret and webhook configurations."""
    try:
        pod_policy = failure_policy or presets.settings(behave_like)[presets.POD_FAILURE_POLICY]
    except ValueError as e:
        typer.echo(f"--behave-like: {e}", err=True)
        raise typer.Exit(2) from e
    for name, policy in (("--failure-policy", pod_policy), ("--tgb-failure-policy",
                                                           tgb_failure_policy)):
        if policy not in ("Ignore", "Fail"):
            typer.echo(f"{name} must be Ignore or Fail", err=True)
            raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    c = certs_mod.generate(service, namespace)
    docs = certs_mod.render_manifests(
        c,
        namespace,
        service,
        pod_policy,
        secret_name,
        tgb_failure_policy=tgb_failure_policy,
        watch_namespace=watch_namespace,
        name_suffix=name_suffix,
    )
    for fname, doc in docs.items():
        (out / fname).write_text(yaml.safe_dump(doc, sort_keys=False))
        typer.echo(str(out / fname))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="alb-controller")


if __name__ == "__main__":
    main()
