"""Applying edited configuration files without a restart (`ivr-admin reload`, POST /api/reload).

What is reloaded: the menu (`menu_file`), the shift plan (`roster_file`), the follow-up teams'
working hours (`teams_file`), the prompts (`prompt_catalog` + `prompt_studio_dir`, rebuilt into
the PBX's sounds directory as at start) and the partner-agency catalog (`agencies_file`;
referrals already stored keep their agency id).
Everything is read and checked first; a file that does not load is refused with its message and
nothing changes. Only then are the prompts built (unchanged ones are skipped) and the new menu
and roster handed to the controller, in turn with the call events.

Calls in progress are not touched: each call's flow holds the menu it started with, so a caller
in the menu finishes with the options they heard; new calls get the new menu. A queue that
disappears from the menu keeps working for the callers already in it.

Not reloadable (a restart is needed): the settings file, and changing which staff list
(counselors or agents) answers an existing queue.

Limits: the prompt build deletes the audio of prompts removed from the catalog, so a call still
in an old menu that names one would hear nothing for it — drop a prompt from the menu first and
from the catalog at a later reload. A consent answered after a reload is stored with the new
catalog's version of the consent text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ivr import speak_ko
from ivr.config import Settings
from ivr.flow.menu import Menu, MenuError, load_menu
from ivr.flow.states import FLOW_PROMPTS
from ivr.followup.agencies import Agencies, AgencyError, load_agencies
from ivr.followup.journey import FOLLOWUP_PROMPTS
from ivr.prompts.catalog import Catalog, CatalogError, MissingPromptError, load_catalog
from ivr.staff.features import DENIED_PROMPT, FEATURE_PROMPTS
from ivr.staff.roster import Roster, RosterError, load_roster
from ivr.staff.teams import Teams, load_checked

#: Prompts the flow and the dialplan name besides those in the menu file.
REQUIRED_PROMPTS = (
    FLOW_PROMPTS
    | FOLLOWUP_PROMPTS
    | speak_ko.all_piece_ids()
    | frozenset(FEATURE_PROMPTS.values())
    | {DENIED_PROMPT, "system_error", "service_unavailable"}
)

__all__ = ["ConfigFiles", "ReloadError", "load_files"]


class ReloadError(ValueError):
    """A configuration file that cannot be applied; the message names the file and the fault."""


@dataclass(frozen=True)
class ConfigFiles:
    menu: Menu
    catalog: Catalog
    roster: Roster
    agencies: Agencies
    teams: Teams | None = None


def load_files(
    settings: Settings, required_prompts: Iterable[str], resolve: Callable[[Path], Path]
) -> ConfigFiles:
    """Read and check the menu, the prompt catalog, the roster and the agencies (`resolve` turns the
    settings' relative paths into files). Raises :class:`ReloadError`."""
    try:
        menu = load_menu(resolve(settings.menu_file))
        catalog = load_catalog(resolve(settings.prompt_catalog))
        catalog.require(sorted(menu.prompt_ids() | set(required_prompts)))
        roster = load_roster(resolve(settings.roster_file))
        agencies = load_agencies(resolve(settings.agencies_file))
        staff = {"social_workers": settings.social_workers, "companions": settings.companions}
        teams = load_checked(resolve(settings.teams_file), staff)  # a TeamsError is a RosterError
    except (MenuError, CatalogError, MissingPromptError, RosterError, AgencyError) as exc:
        raise ReloadError(str(exc)) from None
    except OSError as exc:  # a roster file that is missing or unreadable
        raise ReloadError(f"cannot read {exc.filename}: {exc.strerror}") from None
    unknown = {c.endpoint for c in roster.counselors.values()} - set(settings.counselors)
    if unknown:
        raise ReloadError(
            f"{settings.roster_file}: endpoints {sorted(unknown)} are not in the counselors setting"
        )
    return ConfigFiles(menu, catalog, roster, agencies, teams)
