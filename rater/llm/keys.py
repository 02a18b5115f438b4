"""API keys come from an environment variable or a key file, never from the command line or the database."""

import os
from pathlib import Path

from rater.core.errors import RaterError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
NO_KEY = "no-key"  # sent to a local server that needs no key (transformers serve, Ollama, llama.cpp, vLLM)


def read_api_key(env_name: str | None = None, key_file: str | None = None, *, base_url: str | None = None) -> str:
    """The key from the named variable (default OPENAI_API_KEY), else the key file; the error names both and never
    a key. A server of one's own (`base_url`) often needs no key: when no variable or file was named and the
    default variable is unset, a placeholder is sent."""
    named = env_name is not None or key_file is not None
    env_name = env_name or DEFAULT_KEY_ENV
    value = os.environ.get(env_name, "").strip()
    if value:
        return value
    if key_file:
        path = Path(key_file).expanduser()
        if path.exists() and path.read_text(encoding="utf-8").strip():
            return path.read_text(encoding="utf-8").strip()
        raise RaterError(f"No API key: the key file {path} is missing or empty.",
                         f"write the key into {path} or set {env_name}")
    if base_url and not named:
        return NO_KEY
    raise RaterError(f"No API key: the environment variable {env_name} is not set.",
                     f"set {env_name} or pass --api-key-env with the name of the variable that holds it")
