"""`voiceagent --version` as a user runs it."""

from __future__ import annotations

from tests.cli_process import run_cli
from voiceagent import __version__


async def test_version_prints_the_installed_version() -> None:
    """The CLI prints its name and the package version and exits 0."""
    code, out, _ = await run_cli("--version")
    assert (code, out.strip()) == (0, f"voiceagent {__version__}")
