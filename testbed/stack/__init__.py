"""The running testbed beside and inside the cluster: the fake AWS container on the kind
network and the controller deployed in-cluster. Shared by `testbed run`, the demo and e2e."""
