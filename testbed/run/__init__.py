"""Running a scenario end to end on the cluster: deploy, load, roll, collect, report."""
