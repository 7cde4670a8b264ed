"""`python -m connector` and the `connector` console script."""

import sys

from connector import native, stopping


def run() -> None:
    stopping.install()  # before the heavy imports below
    refuse_a_stale_native_build()  # before any compiled module is imported
    from connector.cli import main

    main()


def refuse_a_stale_native_build() -> None:
    """Exit with what to do when a compiled module no longer matches its source."""
    try:
        native.ensure_current()
    except native.StaleNativeBuild as exc:
        sys.exit(f"connector: {exc}")


if __name__ == "__main__":
    run()
