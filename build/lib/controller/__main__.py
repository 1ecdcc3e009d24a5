"""`python -m controller` is the same as the `alb-controller` console script."""

from controller.main import main

main()
