"""The README tells the truth: its API table is the registry's, and its quick start commands exist."""

from pathlib import Path

from kbroker import api_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_api_table_matches_the_registry():
    text = README.read_text()
    assert api_table.replace_in(text) == text, "run `python -m kbroker.api_table --write`"


def test_quick_start_commands_are_the_repo_scripts():
    text = README.read_text()
    assert "pip install . && kbroker serve" in text
    assert "scripts/test" in text and (README.parent / "scripts" / "test").exists()
    assert "scripts/test" in (README.parent / ".ci" / "run").read_text()


def test_handler_index_matches_the_modules():
    assert api_table.SERVED_PY.read_text() == api_table.served_module(), "run `python -m kbroker.api_table --write`"
