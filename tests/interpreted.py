"""`python -m pytest -p tests.interpreted`: the native core's sources, interpreted, though built.

A plugin named with -p is imported before any conftest or test module, so before anything
imports the compiled modules. `make test` runs the unit tests so a second time.
"""

from connector import native

native.run_interpreted()
