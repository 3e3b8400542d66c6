"""`python -m lipbench` is the `lipbench` command."""
from lipbench.cli import main

main()
