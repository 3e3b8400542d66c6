"""`python -m lipbench.report` is the `lipbench-report` command."""
from lipbench.report import main

main()
