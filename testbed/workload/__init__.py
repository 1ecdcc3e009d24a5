"""Your own workload: manifests read and checked without a cluster (manifests.py, select.py),
the images they need made available to kind (images.py), and the rollout triggers
(rollout.py)."""
