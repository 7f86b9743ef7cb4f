"""The documentation points at things that exist: links, cited documents, the folder tree and
the settings table."""

from __future__ import annotations

import re
from pathlib import Path

from voiceagent.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
TOP = ("voiceagent/", "tests/", "docs/", "deploy/", "config/", "scripts/", "benchmarks/", ".ci/")


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped)."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_every_relative_link_in_readme_changelog_and_docs_resolves() -> None:
    """Each relative link names a file of the repository, and its #anchor a heading there."""
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            if not file.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert broken == []


def test_paths_the_readme_names_exist() -> None:
    """Every repository path the README quotes (`deploy/haproxy.cfg`, `.ci/run`, ...) exists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = [p for p in re.findall(r"`([^`\s]+)`", text) if p.startswith(TOP)]
    assert quoted and [p for p in quoted if not (ROOT / p).exists()] == []


def test_the_readme_folder_tree_names_real_files() -> None:
    """Each module and folder in the README's tree exists (a rename must update the tree)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tree = text.split("Folder tree = architecture:", 1)[1].split("```")[1]
    names = set(re.findall(r"\b([a-z_]+\.py)\b", tree))
    files = {p.name for p in ROOT.glob("voiceagent/**/*.py")} | {
        p.name for p in ROOT.glob("tests/**/*.py")
    }
    folders = re.findall(r"^(?:tests/ +\S+ +\S+ +)?([a-z_]+/)", tree, re.MULTILINE)
    missing_folders = [
        f for f in folders if not ((ROOT / f).is_dir() or (ROOT / "voiceagent" / f).is_dir())
    ]
    assert len(names) > 20 and sorted(names - files) == [] and missing_folders == []


def test_every_document_the_code_cites_is_in_the_repository() -> None:
    """Docstrings and comments cite docs/*.md files that exist, never a document outside."""
    cited, outside = set(), []
    for source in [*ROOT.glob("voiceagent/**/*.py"), *ROOT.glob("tests/**/*.py")]:
        text = source.read_text(encoding="utf-8")
        cited |= set(re.findall(r"docs/[\w-]+\.md", text))
        if re.search(r"\.\./shared|\b(?:twilio|inworld)\.md\b(?<!protocols\.md)", text):
            outside.append(source.relative_to(ROOT).as_posix())
    assert "docs/protocols.md" in cited
    assert sorted(c for c in cited if not (ROOT / c).exists()) == [] and outside == []


def test_every_setting_is_in_the_settings_table_and_env_example() -> None:
    """Each environment variable voiceagent reads has a row in docs/configuration.md's table
    and a line in .env.example."""
    table = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = "\n".join(line for line in table.splitlines() if line.startswith("| `"))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert [n for n in ENV_NAMES if f"`{n}`" not in rows] == []
    assert [n for n in ENV_NAMES if not re.search(rf"^#? ?{n}=", example, re.MULTILINE)] == []
