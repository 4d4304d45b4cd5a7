from pathlib import Path

from api.access import roles_matrix

DOC = Path(__file__).parent.parent / "docs" / "security.md"


def test_the_roles_matrix_in_the_docs_is_the_one_the_code_enforces() -> None:
    text = DOC.read_text()
    documented = text.split("<!-- roles-matrix:start -->")[1].split("<!-- roles-matrix:end -->")[0].strip()
    assert documented == roles_matrix(), "regenerate with: python -m api.access"
