"""The reference pages match the code, and every ``pyq`` command line in the README and docs parses."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import warnings
from pathlib import Path
from types import ModuleType

import click
import pytest

from pyq.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_INLINE = re.compile(r"`(pyq(?: [^`\n]*)?)`")


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "tools" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_docs"] = module
    spec.loader.exec_module(module)
    return module


gen_docs = _gen_docs()


def command_lines(text: str) -> list[str]:
    """``pyq ...`` lines of code blocks (``$ `` prompts allowed) and inline code spans."""
    found = []
    for block in _FENCE.findall(text):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ").removeprefix("exec ")
            if line == "pyq" or line.startswith("pyq "):
                found.append(line)
    prose = _FENCE.sub("", text)
    return found + _INLINE.findall(prose)


def parse(line: str) -> None:
    """Parse ``line`` the way the ``pyq`` command would, without running it; raises click.UsageError.

    Arguments may be left out (prose names ``pyq cron run`` without a NAME), but every subcommand
    and every flag must exist.
    """
    args = shlex.split(line, comments=True)[1:]
    command: click.Command = cli_main
    name = "pyq"
    while True:
        try:
            ctx = command.make_context(name, list(args), resilient_parsing=True)
        except click.exceptions.Exit:  # --help, --version
            return
        with warnings.catch_warnings():  # click 8.2 deprecates protected_args; 9.0 folds it into args
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*getattr(ctx, "protected_args", []), *ctx.args]
        group = isinstance(command, click.Group)
        _check_flags(command, ctx, args[:len(args) - len(rest)] if group else args)
        if not rest or not group:
            return
        if rest[0] not in command.commands:  # type: ignore[attr-defined]
            raise click.UsageError(f"{name}: no such command {rest[0]!r}")
        name, command, args = rest[0], command.commands[rest[0]], rest[1:]  # type: ignore[attr-defined]


def _check_flags(command: click.Command, ctx: click.Context, tokens: list[str]) -> None:
    known = {opt for p in command.get_params(ctx) if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}
    for token in tokens:
        if token == "--":
            return
        flag = token.split("=", 1)[0]
        is_flag = flag.startswith("-") and len(flag) > 1 and not flag[1:].replace(".", "").isdigit()
        attached = not flag.startswith("--") and flag[:2] in known  # -rexamples.jobs
        if is_flag and flag not in known and not attached:
            raise click.UsageError(f"{ctx.info_name}: no such option {flag}")


@pytest.mark.parametrize("path", list(gen_docs.OUTPUTS), ids=str)
def test_generated_pages_are_current(path: str) -> None:
    committed = (ROOT / path).read_text(encoding="utf-8")
    assert committed == gen_docs.OUTPUTS[path](), f"{path} is stale: run python tools/gen_docs.py"


def test_check_mode_reports_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a checkout whose cli.md was edited by hand
    (tmp_path / "docs").mkdir()
    for path, make in gen_docs.OUTPUTS.items():
        (tmp_path / path).write_text(make(), encoding="utf-8")
    (tmp_path / "docs/cli.md").write_text("# hand-edited\n", encoding="utf-8")
    monkeypatch.setattr(gen_docs, "ROOT", tmp_path)
    # Then --check fails, and a plain run repairs it
    assert gen_docs.main(["--check"]) == 1
    assert gen_docs.main([]) == 0
    assert gen_docs.main(["--check"]) == 0


def test_every_setting_has_a_meaning_in_queue_yml() -> None:
    meanings = gen_docs.config_meanings()
    missing = [f.name for f in gen_docs.settings() if not meanings.get(f.name)]
    assert not missing, f"config/queue.yml has no comment for {missing}"


def test_every_flag_and_subcommand_is_in_cli_md() -> None:
    page = (ROOT / "docs/cli.md").read_text(encoding="utf-8")
    for path, command in gen_docs.commands(cli_main):
        assert f"## `{' '.join(path)}`" in page
        for param in command.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    assert opt in page, opt


def test_pages_mention_pyq_command_lines() -> None:
    lines = [line for page in PAGES for line in command_lines(page.read_text(encoding="utf-8"))]
    assert any(line.startswith("pyq -C") for line in lines)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_pyq_command_line_parses(page: Path) -> None:
    for line in command_lines(page.read_text(encoding="utf-8")):
        try:
            parse(line)
        except click.UsageError as exc:
            pytest.fail(f"{page.name}: `{line}`: {exc.format_message()}")


def test_parse_refuses_unknown_commands_and_flags() -> None:
    with pytest.raises(click.UsageError):
        parse("pyq no-such-command")
    with pytest.raises(click.UsageError):
        parse("pyq --no-such-flag")
    with pytest.raises(click.UsageError):
        parse("pyq retry no-such-action")
    with pytest.raises(click.UsageError):
        parse("pyq stats --no-such-flag")
    parse("pyq retry list --json")
    parse("pyq -C config/queue.yml -q critical,3 -c 5  # a comment")
