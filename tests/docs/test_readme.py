"""README's two commands stay true: CI runs exactly its test command."""

from __future__ import annotations

import re

from conftest import ROOT


def fenced(text: str) -> list[str]:
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = [b.strip() for b in fenced(readme)]
    assert "pytest" in blocks, "README shows the test command alone in a block"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(line.strip() in ("pytest", "python -m pytest") for line in ci)
    assert "-e '.[dev]'" in (ROOT / ".ci" / "run").read_text()  # installs from pyproject.toml


def test_readme_main_command_names_existing_example():
    readme = (ROOT / "README.md").read_text()
    main = next(b for b in fenced(readme) if "pip install" in b)
    for path in re.findall(r"examples/\S+\.nn", main):
        assert (ROOT / path).is_file(), path


def test_readme_examples_quote_their_files():
    """A block that starts by naming an example file shows that file as it is (its first lines)."""
    readme = (ROOT / "README.md").read_text()
    quoted = [b for b in fenced(readme) if re.match(r"# (examples/\S+\.nn)\n", b)]
    assert quoted
    for block in quoted:
        name, body = block.split("\n", 1)
        text = (ROOT / name[2:]).read_text()
        assert text.startswith(body.rstrip("\n") + "\n") or body.strip() in text, name
