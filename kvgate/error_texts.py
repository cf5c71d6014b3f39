"""Every error text kvgate answers, each defined once.

Redis's own texts come first, verbatim (``tests`` compare them with a real Redis); then the
texts kvgate adds for what Redis never says (refusals, limits, backend failures).  Code
anywhere in kvgate imports a text from here rather than writing it out.
"""

from __future__ import annotations

# --- Redis's own texts ------------------------------------------------------------

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
WRONGPASS = "WRONGPASS invalid or missing auth token"


def wrong_arity(fullname: str) -> str:
    return f"ERR wrong number of arguments for '{fullname}' command"


def _clean(text: str) -> str:
    # Redis replaces CR/LF in error texts so they stay one protocol line.
    return text.replace("\r", " ").replace("\n", " ")


def unknown_command(name: str, args: list[str]) -> str:
    """Redis's text, including its 128-character budget for the argument preview."""
    preview = ""
    for arg in args:
        if len(preview) >= 128:
            break
        preview += f"'{arg[: 128 - len(preview)]}' "
    return _clean(f"ERR unknown command '{name[:128]}', with args beginning with: {preview}")


def unknown_subcommand(container: str, sub: str) -> str:
    return _clean(f"ERR unknown subcommand '{sub[:128]}'. Try {container.upper()} HELP.")


def noperm(fullname: str) -> str:
    return f"NOPERM this user has no permissions to run the '{fullname}' command"




# --- kvgate's own texts -----------------------------------------------------------


def not_supported(name: str, backend: str) -> str:
    """A command the backend's engine does not implement (it exists in Redis)."""
    return f"ERR command '{name}' is not supported by the {backend} backend"


def not_available(fullname: str, reason: str) -> str:
    """A command kvgate's policy refuses over REST."""
    return f"ERR command '{fullname}' is not available over REST: {reason}"
