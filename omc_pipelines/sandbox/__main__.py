import sys

from omc_pipelines.cli import main

main(["sandbox", *sys.argv[1:]])
