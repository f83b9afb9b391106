"""What a newcomer reads first (issue 15): the README's first screen has exactly the two set-up
commands, says what `make test` installs and how long it takes, where the command line lives,
and how to try the endpoint without an Aurous account; and it never sends the reader to a file
outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
FIRST_SCREEN = "\n".join(README.splitlines()[:40])


def test_the_first_screen_has_exactly_the_two_set_up_commands() -> None:
    commands = re.findall(r"^(make \w+)", FIRST_SCREEN, flags=re.MULTILINE)
    assert commands == ["make demo", "make test"]


def test_it_says_what_make_test_installs_and_how_long_it_takes() -> None:
    for words in ("Playwright", "chromium", "minutes"):
        assert words in FIRST_SCREEN, words


def test_it_says_where_the_command_line_lives_and_how_to_try_it_locally() -> None:
    assert ".venv/bin/aurous-receiver" in README
    assert "source .venv/bin/activate" in README
    section = README.split("## Try it locally", 1)[1].split("\n## ", 1)[0]
    assert "aurous-receiver trigger image.completed" in section
    assert "aurous-receiver simulate" in section


def test_every_file_it_links_to_is_in_the_repository() -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        assert (ROOT / target).exists(), target
    for path in re.findall(r"`((?:bench|tests|receiver|storage|simulator)/[\w/.-]+\.py)`", README):
        assert (ROOT / path).exists(), path


def test_no_file_of_the_repository_sends_the_reader_outside_it() -> None:
    outside = ("DESIGN" + ".md", "aurous-api" + ".md", "../" + "shared/")
    tracked = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", ROOT / "Makefile"]
    for folder in ("receiver", "storage", "simulator", "tests", "bench"):
        tracked += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".html")]
    for path in tracked:
        text = path.read_text(errors="replace")
        for name in outside:
            assert name not in text, f"{path.relative_to(ROOT)} points at {name}"
