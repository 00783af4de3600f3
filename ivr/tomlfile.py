"""Reading the project's TOML files (settings, menu, roster, teams, agencies, prompts).

Each loader reads its file with :func:`read_toml` and validates the data itself; a file
that is missing, unreadable or not TOML becomes the loader's own error, with a message that
names the file (and, for bad TOML, tomllib's line and column).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def read_toml(
    file: Path,
    error: Callable[[str], Exception],
    *,
    unreadable: str,
    missing: str | None = None,
    invalid: str = "not valid TOML",
) -> dict[str, Any]:
    """The parsed file. Failures raise ``error(message)``: ``"<file>: <missing>"`` for a file
    that is not there (without `missing`: reported as unreadable), ``"<file>: <unreadable>:
    <why>"`` for one that cannot be read, ``"<file>: <invalid>: <tomllib's message>"`` for
    one that is not TOML."""
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        if missing is None:
            raise error(f"{file}: {unreadable}: {exc.strerror}") from None
        raise error(f"{file}: {missing}") from None
    except OSError as exc:
        raise error(f"{file}: {unreadable}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{file}: {invalid}: {exc}") from None
