"""Reading docker-compose.yml the way Compose does, without a Docker engine: PyYAML (with YAML
merge keys, as Compose supports them) plus Compose's variable interpolation (``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``, ``${VAR?message}``, ``$$``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DEPLOY = REPO / "deploy"
ENV_EXAMPLE = DEPLOY / ".env.example"

# ${NAME}, ${NAME:-x}, ${NAME-x}, ${NAME:?x}, ${NAME?x}; $$ is a literal dollar.
_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(Exception):
    pass


def load_raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def references(text: str) -> list[tuple[str, str, str]]:
    """Every ``(name, operator, argument)`` a string interpolates; operator '' for plain ${NAME}."""
    out = []
    for m in _VAR.finditer(text):
        if m.group(0) == "$$":
            continue
        name = m.group("name") or m.group("bare")
        out.append((name, m.group("op") or "", m.group("arg") or ""))
    return out


def interpolate_str(text: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op") or "", m.group("arg") or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op == ":?":
            if not value:
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op == "?":
            if value is None:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return _VAR.sub(sub, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate_str(node, env)
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    return node


def strings(node: Any) -> list[str]:
    """Every string value in a parsed YAML tree."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    return []


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"deploy/.env.example: not KEY=VALUE: {line!r}"
        values[key.strip()] = value.strip()
    return values


# Stand-ins for the secrets a real deploy/.env holds (hex, like `openssl rand -hex 32`).
FAKE_SECRETS = {
    "HANDOFF_RASA_TOKEN": "t0ken" + "ab" * 12,
    "POSTGRES_PASSWORD": "pg" + "cd" * 12,
    "HANDOFF_DB_PASSWORD": "hd" + "ef" * 12,
    "RASA_TRACKER_DB_PASSWORD": "rt" + "01" * 12,
    "REDIS_PASSWORD": "rd" + "23" * 12,
}


def filled_env() -> dict[str, str]:
    """deploy/.env.example with its empty secrets filled in: what a user's deploy/.env looks like."""
    env = env_example()
    for key, value in FAKE_SECRETS.items():
        if not env.get(key):
            env[key] = value
    return env


def load(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml as Compose sees it with ``env`` (default: the filled-in example)."""
    raw = load_raw()
    data = interpolate(raw, filled_env() if env is None else env)
    assert isinstance(data, dict)
    return data


def dockerfile_stages(path: Path, build_args: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``[(image, stage_name)]`` of every FROM, with ARG defaults (and ``build_args``) applied."""
    args: dict[str, str] = {}
    stages: list[tuple[str, str | None]] = []
    seen_from = False
    for line in _logical_lines(path.read_text()):
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not seen_from:
            name, _, default = rest.strip().partition("=")
            args[name] = (build_args or {}).get(name, default)
        elif word == "FROM":
            seen_from = True
            parts = [p for p in rest.split() if not p.startswith("--")]
            image = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), ""), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append((image, name))
    return stages


def dockerfile_copies(path: Path) -> list[list[str]]:
    """The source paths of every COPY/ADD that reads the build context (not ``--from=``)."""
    out = []
    for line in _logical_lines(path.read_text()):
        word, _, rest = line.partition(" ")
        if word.upper() not in ("COPY", "ADD"):
            continue
        parts = rest.split()
        if any(p.startswith("--from") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        out.append(parts[:-1])
    return out


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    if current:
        lines.append(current.strip())
    return lines


def dockerignore_excludes(ignore_file: Path, rel_path: str) -> bool:
    """Whether a context path is left out by a .dockerignore (Docker's rules: patterns in order,
    the last match wins, ``!`` re-includes, a matched directory covers what is under it)."""
    patterns = []
    for line in ignore_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        patterns.append(line)

    def to_regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return out + r"\Z"

    def matches(pattern: str, path: str) -> bool:
        regex = to_regex(pattern.strip("/"))
        parts = path.split("/")
        return any(re.match(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1))

    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if matches(pattern.lstrip("!"), rel_path):
            excluded = not negate
    return excluded
