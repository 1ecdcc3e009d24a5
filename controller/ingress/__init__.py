"""Ingress mode, model layer: Ingress objects -> the desired ALB model (pure, no API calls).

Modules: annotations (parsing + defaults), actions (actions./conditions. JSON), classes (which
Ingresses are ours, IngressGroups), naming (upstream's names), model (dataclasses), build (the
model builder), objects (raw API JSON -> client models), errors. Behaviour follows
kubernetes-sigs/aws-load-balancer-controller v3.5.0, pkg/ingress; see docs/ingress.md.
"""
