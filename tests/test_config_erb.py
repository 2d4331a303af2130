"""pyq.config_erb: the ERB forms Rails apps write in sidekiq.yml, and a clear error for the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyq.config import load
from pyq.config_erb import render
from pyq.errors import ConfigError

CONFIGS = Path(__file__).resolve().parent / "configs"
ENV = {"SET": "7", "WORDS": "two words", "EMPTY": ""}


@pytest.mark.parametrize(("tag", "expected"), [
    ('<%= ENV["SET"] %>', "7"),
    ("<%= ENV['SET'] %>", "7"),
    ('<%= ENV["UNSET"] %>', ""),
    ('<%= ENV["EMPTY"] || 3 %>', ""),
    ('<%= ENV["UNSET"] || 3 %>', "3"),
    ('<%= ENV.fetch("SET") %>', "7"),
    ('<%= ENV.fetch("UNSET") { 5 } %>', "5"),
    ('<%= ENV.fetch("UNSET") { "five" } %>', "five"),
    ('<%= ENV.fetch("UNSET", 5) %>', "5"),
    ("<%= ENV.fetch('UNSET', 'x') %>", "x"),
    ('<%= ENV.fetch("SET", 5) %>', "7"),
    ('<%= ENV.fetch("UNSET", nil) %>', ""),
    ('<%= Integer(ENV.fetch("UNSET", 5)) %>', "5"),
    ('<%= Integer(ENV.fetch("SET") { 5 }) %>', "7"),
    ('<%= ENV.fetch("UNSET", "12").to_i %>', "12"),
    ('<%= ENV["WORDS"].to_i %>', "0"),
    ('<%= (ENV["UNSET"] || 4).to_i %>', "4"),
    ("<%=ENV['SET']%>", "7"),
    ("<%# a comment %>", ""),
    ("<%% literal %>", "<% literal %>"),
])
def test_supported_forms_evaluate_like_ruby(tag: str, expected: str) -> None:
    assert render(f"a: {tag}\n", "sidekiq.yml", ENV) == f"a: {expected}\n"


def test_text_without_tags_is_returned_unchanged() -> None:
    assert render("concurrency: 5\n", "f", {}) == "concurrency: 5\n"


@pytest.mark.parametrize("tag", ['<%= Rails.env %>', "<% if true %>", '<%= ENV["SET"] + "x" %>',
                                 '<%= ENV.fetch("SET") { 5 } * 2 %>', "<%= 1 + 1 %>", '<%= `id` %>'])
def test_other_erb_names_the_file_and_line_and_the_dollar_form(tag: str) -> None:
    with pytest.raises(ConfigError) as err:
        render(f"concurrency: 5\ntag: {tag}\n", "config/sidekiq.yml", ENV)
    message = str(err.value)
    assert message.startswith(f"config/sidekiq.yml: line 2: ERB {tag!r} is not supported")
    assert "${" in message and ":-5}" in message


def test_the_suggestion_uses_the_variable_the_tag_reads() -> None:
    with pytest.raises(ConfigError, match=r"write \$\{RAILS_MAX_THREADS:-5\} instead"):
        render('c: <%= ENV.fetch("RAILS_MAX_THREADS") { 5 } * 2 %>', "f", {})


def test_fetch_without_default_of_an_unset_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^f: line 1: environment variable UNSET is not set"):
        render('c: <%= ENV.fetch("UNSET") %>', "f", {})


def test_integer_of_text_that_is_no_integer_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"Integer\(ENV\[\"WORDS\"\]\) is not an integer"):
        render('c: <%= Integer(ENV["WORDS"]) %>', "f", ENV)


def test_rails_file_loads_development_by_default_and_production_when_asked() -> None:
    path = CONFIGS / "rails.yml"
    config = load(path, env={"APP_NAME": "shop"})
    assert (config.environment, config.concurrency, config.timeout_s, config.tag) == ("development", 2, 8.0, "shop")
    assert load(path, env={"DEV_THREADS": "3", "APP_NAME": "shop"}).concurrency == 3
    assert load(path, env={"RAILS_ENV": "production", "PROD_THREADS": "12", "APP_NAME": "shop"}).concurrency == 12


def test_cli_refuses_ruby_code_in_erb_naming_the_line() -> None:
    path = CONFIGS / "erb_unsupported.yml"
    done = subprocess.run([sys.executable, "-m", "pyq", "-C", str(path)], capture_output=True, text=True,
                          timeout=30, env=os.environ.copy())
    assert done.returncode == 2
    tag = "<%= Rails.application.class.module_parent_name %>"
    assert done.stderr.startswith(f"pyq: {path}: line 3: ERB {tag!r} is not supported")
