"""An unexpected exception (a bug) ends in one short panel and a log file under $RATER_HOME/logs that holds the
full traceback, with every secret rater knows of (database passwords, API keys, tokens) masked."""

import os
import platform
import re
import sys
import traceback
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rater.core.paths import rater_home

MASK = "***"
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
PATTERNS = [
    (re.compile(r"(://[^:/@\s]*):[^@/\s]+@"), rf"\1:{MASK}@"),  # user:password@ in URLs
    (re.compile(r"(?i)(password|passwd|pwd|token|api[_-]?key|secret)(\s*[=:]\s*)(['\"]?)[^\s'\",;&]+"),
     rf"\1\2\3{MASK}"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{MASK}"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), MASK),
]


def secret_values() -> list[str]:
    """Values of environment variables whose names say they hold a secret (OPENAI_API_KEY, PGPASSWORD, ...)."""
    return sorted({value for name, value in os.environ.items() if SECRET_NAME.search(name) and len(value) >= 4},
                  key=len, reverse=True)


def scrub(text: str, extra: tuple[str, ...] = ()) -> str:
    for value in (*extra, *secret_values()):
        if value:
            text = text.replace(value, MASK)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def command_line(argv: list[str] | None = None) -> str:
    return scrub("rater " + " ".join(sys.argv[1:] if argv is None else argv))


def write_bug_log(error: BaseException, command: str, extra_secrets: tuple[str, ...] = ()) -> Path:
    """The full traceback, scrubbed, in a new file under $RATER_HOME/logs (or the temp folder if that fails)."""
    try:
        rater_version = version("rater")
    except PackageNotFoundError:
        rater_version = "unknown"
    body = scrub("".join([
        f"rater {rater_version}, Python {sys.version.split()[0]}, {platform.platform()}\n",
        f"{datetime.now().isoformat(timespec='seconds')}\n",
        f"command: {command}\n\n",
        *traceback.format_exception(error),
    ]), extra_secrets)
    name = f"bug-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    for folder in (rater_home() / "logs", Path(os.environ.get("TMPDIR", "/tmp"))):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(body, encoding="utf-8")
            return path
        except OSError:
            continue
    raise OSError("no folder to write the bug log to")
