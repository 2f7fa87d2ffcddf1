"""docs/PROTOCOL.md keeps every sentence of the course's shared contract.

The shared contract (../shared/PROTOCOL.md beside the repository, in CI
too) says: "The project's own protocol document keeps every sentence of this
page." Part 1 of docs/PROTOCOL.md is that page; this test catches the two
drifting apart when either changes.
"""

import re

import pytest

from .conftest import REPO

# Tests of the harness's own code: they run in `make test` but never count toward a node's score.
pytestmark = pytest.mark.harness_self_test

SHARED = REPO.parent / "shared" / "PROTOCOL.md"


def _paragraphs(text: str) -> list[str]:
    """Paragraphs with headings' '#'s and all runs of white space folded, so only words count."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        block = re.sub(r"^#+\s*", "", block.strip(), flags=re.M)
        block = " ".join(block.split())
        if block:
            out.append(block)
    return out


@pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} is not beside this checkout")
def test_every_paragraph_of_the_shared_contract_is_in_docs_protocol():
    ours = " ".join((REPO / "docs" / "PROTOCOL.md").read_text().split())
    shared = _paragraphs(SHARED.read_text())[1:]  # the title differs on purpose
    missing = [p for p in shared if p not in ours]
    assert not missing, "docs/PROTOCOL.md lacks these paragraphs of the shared contract:\n\n" + "\n\n".join(missing)
