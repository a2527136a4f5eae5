"""``python -m riskengine``: the same command line as the ``riskengine`` script."""

from riskengine.cli import main

if __name__ == "__main__":
    main()
