"""The example settings file, generated from the :class:`ivr.config.Settings` definition.

Every field appears with its default, under the field's ``#:`` comments, in the order of the
class, so ``config/ivr120.example.toml`` lists every key (tests/test_config.py checks that the
committed file is what this renders). After adding or changing a setting::

    python -m ivr.config_example > config/ivr120.example.toml
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ivr.config import Settings
from ivr.paths import PROJECT_ROOT

EXAMPLE_PATH = PROJECT_ROOT / "config" / "ivr120.example.toml"

HEADER = """\
# Example configuration. Copy to a file of your own and pass it with `--config FILE` or the
# IVR120_CONFIG environment variable. Every key is optional; the values below are the defaults.
# Any key can also be set in the environment as IVR120_<KEY> (e.g. IVR120_SIP_PORT=5070).
#
# Generated from ivr/config.py (the `#:` comments of Settings):
#     python -m ivr.config_example > config/ivr120.example.toml
"""

_FIELD = re.compile(r"^    (\w+)\s*:")
_DOC = re.compile(r"^    #:\s?(.*)$")
_WIDTH = 100


def toml_value(value: Any) -> str:
    """A default as TOML (strings, paths, numbers, booleans and lists of strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _assignment(name: str, value: Any) -> list[str]:
    line = f"{name} = {toml_value(value)}"
    if len(line) <= _WIDTH or not isinstance(value, tuple | list):
        return [line]
    lines, current = [], f"{name} = ["
    indent = " " * len(current)
    items = [toml_value(v) for v in value]
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "]")
        if len(current) + len(piece) + 1 > _WIDTH and current.strip() not in ("", f"{name} = ["):
            lines.append(current.rstrip())
            current = indent
        current += piece + " "
    lines.append(current.rstrip())
    return lines


def render_example() -> str:
    """The example file's text."""
    # The declared defaults, not an instance's values (__post_init__ makes state_dir absolute).
    defaults = {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        for f in dataclasses.fields(Settings)
    }
    fields = set(defaults)
    out = HEADER.splitlines()
    docs: list[str] = []
    for line in inspect.getsource(Settings).splitlines()[1:]:
        if line.startswith("    def ") or line.startswith("    @"):
            break
        doc = _DOC.match(line)
        if doc:
            docs.append(doc[1])
            continue
        field = _FIELD.match(line)
        if field and field[1] in fields:
            out += [f"# {d}".rstrip() for d in docs]
            out += _assignment(field[1], defaults[field[1]])
            docs = []
        elif not line.strip() and out[-1] != "":
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ivr.config_example", description="Print the example settings file."
    )
    p.add_argument(
        "--check", action="store_true", help=f"exit 1 if {EXAMPLE_PATH.name} is out of date"
    )
    args = p.parse_args(argv)
    text = render_example()
    if args.check:
        if EXAMPLE_PATH.read_text(encoding="utf-8") != text:
            print(
                f"{EXAMPLE_PATH} is out of date: python -m ivr.config_example > {EXAMPLE_PATH}",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
