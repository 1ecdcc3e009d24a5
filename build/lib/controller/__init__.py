"""Minimal aws-load-balancer-controller (TargetGroupBinding, IP target mode) for the ALB testbed.

Talks to Kubernetes and to an ELBv2-compatible endpoint only; never imports ``testbed``.
"""
