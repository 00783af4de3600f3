"""Where the project's own data files are (templates, prompts, default configuration)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DIALPLAN_TEMPLATES = PROJECT_ROOT / "dialplan" / "templates"
PROMPTS_DIR = PROJECT_ROOT / "prompts"
CONFIG_DIR = PROJECT_ROOT / "config"


def project_file(p: Path) -> Path:
    """Relative paths of project files (menu, catalog, studio) are relative to the project."""
    return p if p.is_absolute() else PROJECT_ROOT / p
