"""API keys come from an environment variable or a key file, never from the command line or the database."""

import os
from pathlib import Path

from rater.core.errors import RaterError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def read_api_key(env_name: str = DEFAULT_KEY_ENV, key_file: str | None = None) -> str:
    """The key from the named variable, else the key file; the error names both and never a key."""
    value = os.environ.get(env_name, "").strip()
    if value:
        return value
    if key_file:
        path = Path(key_file).expanduser()
        if path.exists() and path.read_text(encoding="utf-8").strip():
            return path.read_text(encoding="utf-8").strip()
        raise RaterError(f"No API key: the key file {path} is missing or empty.",
                         f"write the key into {path} or set {env_name}")
    raise RaterError(f"No API key: the environment variable {env_name} is not set.",
                     f"set {env_name} or pass --api-key-env with the name of the variable that holds it")
