"""`python -m pytest -p tests.interpreted`: the native core's sources, interpreted, though built.

A plugin named with -p is imported before any conftest or test module: NATIVE_CORE=0 is set
before the package is first imported (connector/native.py). `make test` runs the unit tests so
a second time. Child processes the tests start inherit it.
"""

import os

os.environ["NATIVE_CORE"] = "0"
