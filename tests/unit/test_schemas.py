"""The platform's schemas are kept byte-identical to its contract."""

from pathlib import Path

import pytest

from connector.serde.catalog import DEFAULT_SCHEMAS_DIR

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contracts" / "webinar-platform"


@pytest.mark.skipif(not CONTRACT.is_dir(), reason="../shared is not beside this checkout")
@pytest.mark.parametrize("name", ["webinar-activity.avsc", "webinar.avsc"])
def test_platform_schema_is_byte_identical_to_the_contract(name: str) -> None:
    ours = (DEFAULT_SCHEMAS_DIR / "platform" / name).read_bytes()
    assert ours == (CONTRACT / name).read_bytes()


def test_every_contract_schema_is_copied() -> None:
    if not CONTRACT.is_dir():
        pytest.skip("../shared is not beside this checkout")
    contract = {p.name for p in CONTRACT.glob("*.avsc")}
    ours = {p.name for p in (DEFAULT_SCHEMAS_DIR / "platform").glob("*.avsc")}
    assert contract and contract <= ours
