# The README's two commands are `make demo` and `make test`; both set up a fresh machine first.
.PHONY: setup test unit lint demo bench clean test-jaeger

setup:
	@bash scripts/bootstrap

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	docker-compose -f docker-compose.yml config -q

# EXPECT_NATIVE_CORE: a native core that failed to build fails the tests (CI tests what ships);
# then the unit tests again on the same sources interpreted (what runs where nothing is built).
test: setup lint
	EXPECT_NATIVE_CORE=$${NATIVE_CORE:-1} .venv/bin/pytest
	.venv/bin/python -m pytest -q -p tests.interpreted tests/unit

demo: setup
	.venv/bin/connector demo

# OTLP export to a real Jaeger (built from the Go module proxy on first use, ~9 min): on demand,
# not in CI, which skips that test while .cache/jaeger is absent.
test-jaeger: setup
	CONNECTOR_TEST_JAEGER=1 .venv/bin/pytest tests/integration/test_otlp_jaeger.py

unit: setup
	.venv/bin/pytest tests/unit

bench: setup
	.venv/bin/python bench/decode.py

clean:
	rm -rf .cache .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis connector/native-build.json \
		connector/serde/precompiled.py
	find connector -name '*.so' -delete
