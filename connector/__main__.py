"""`python -m connector` and the `connector` console script."""

from connector import stopping


def run() -> None:
    stopping.install()  # before the heavy imports below
    from connector.cli import main

    main()


if __name__ == "__main__":
    run()
