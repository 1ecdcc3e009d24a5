"""Webhook TLS material and the webhook configuration manifests, generated at install time.

A private CA signs one serving certificate for <service>.<namespace>.svc; the CA goes into
caBundle, the cert/key into a kubernetes.io/tls Secret mounted by the controller Deployment.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MUTATING_NAME = "alb-controller-mutating-webhook"
VALIDATING_NAME = "alb-controller-validating-webhook"
# set by the API server on every namespace (Kubernetes 1.22+)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
MUTATE_POD_PATH = "/mutate-v1-pod"
VALIDATE_TGB_PATH = "/validate-elbv2-k8s-aws-v1beta1-targetgroupbinding"
INJECT_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"
CONTROLLER_APP_LABEL = "app.kubernetes.io/name"
CONTROLLER_APP = "alb-controller"


@dataclass
class WebhookCerts:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
    return k.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def dns_names(service: str, namespace: str) -> list[str]:
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def generate(
    service: str, namespace: str, days: int = 3650, extra_names: list[str] | None = None
) -> WebhookCerts:
    """Create a CA and a serving certificate valid for the Service's DNS names."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alb-controller-webhook-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = _key()
    names = dns_names(service, namespace) + list(extra_names or [])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[2])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return WebhookCerts(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_pem_key(key),
    )


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def render_manifests(
    certs: WebhookCerts,
    namespace: str,
    service: str,
    failure_policy: str = "Ignore",
    secret_name: str = "alb-controller-webhook-tls",
    tgb_failure_policy: str = "Fail",
    watch_namespace: str = "",
    name_suffix: str = "",
) -> dict[str, dict[str, Any]]:
    """Secret + MutatingWebhookConfiguration + ValidatingWebhookConfiguration (file name -> doc).

    failure_policy is the pod mutator's (ALBC helm podMutatorWebhookConfig.failurePolicy,
    Ignore since v2.12.0, PRs #4062/#4063); the TargetGroupBinding webhooks are Fail in every
    ALBC release (helm templates/webhook.yaml)."""
    if failure_policy not in ("Ignore", "Fail") or tgb_failure_policy not in ("Ignore", "Fail"):
        raise ValueError("failure policy must be Ignore or Fail")
    # a controller with --watch-namespace answers for that namespace only (upstream's helm
    # chart takes namespace selectors for its webhooks: values.yaml webhookNamespaceSelectors)
    only_watched = (
        [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": [watch_namespace]}]
        if watch_namespace
        else []
    )

    def client_config(path: str) -> dict[str, Any]:
        return {
            "service": {"namespace": namespace, "name": service, "path": path, "port": 443},
            "caBundle": _b64(certs.ca_pem),
        }

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": secret_name, "namespace": namespace},
        "data": {
            "tls.crt": _b64(certs.cert_pem),
            "tls.key": _b64(certs.key_pem),
            "ca.crt": _b64(certs.ca_pem),
        },
    }
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": MUTATING_NAME + name_suffix},
        "webhooks": [
            {
                "name": "mpod.elbv2.k8s.aws",
                "admissionReviewVersions": ["v1"],
                "clientConfig": client_config(MUTATE_POD_PATH),
                "failurePolicy": failure_policy,
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": INJECT_LABEL, "operator": "In", "values": ["enabled"]},
                        *only_watched,
                    ]
                },
                # never gate the controller's own pods (failurePolicy Fail would deadlock it)
                "objectSelector": {
                    "matchExpressions": [
                        {
                            "key": CONTROLLER_APP_LABEL,
                            "operator": "NotIn",
                            "values": [CONTROLLER_APP],
                        }
                    ]
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
            }
        ],
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VALIDATING_NAME + name_suffix},
        "webhooks": [
            {
                "name": "vtargetgroupbinding.elbv2.k8s.aws",
                "admissionReviewVersions": ["v1"],
                "clientConfig": client_config(VALIDATE_TGB_PATH),
                "failurePolicy": tgb_failure_policy,
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "namespaceSelector": {"matchExpressions": only_watched},
                "rules": [
                    {
                        "apiGroups": ["elbv2.k8s.aws"],
                        "apiVersions": ["v1beta1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["targetgroupbindings"],
                        "scope": "Namespaced",
                    }
                ],
            }
        ],
    }
    return {
        "webhook-secret.yaml": secret,
        "mutating-webhook.yaml": mutating,
        "validating-webhook.yaml": validating,
    }
