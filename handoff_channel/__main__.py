"""Command line: ``python -m handoff_channel serve | create-agent | set-password``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys

from . import auth
from .errors import HandoffError
from .settings import Settings
from .store import create_store


def _read_password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (8+ characters): ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("error: the passwords differ")
    return first


def _teams(value: str | None) -> list[str] | None:
    return None if value is None else [t.strip().lower() for t in value.split(",") if t.strip()]


def _capacity(value: str) -> int:
    n = int(value)
    if not 0 <= n <= 100:
        raise argparse.ArgumentTypeError("capacity must be 0-100")
    return n


async def _create_agent(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    store = create_store(args.db or settings.db_url)
    try:
        password_hash = auth.hash_password(_read_password(args))
        existing = await store.get_agent(args.username)
        if existing is not None:
            if not args.update:
                print(f"error: agent {args.username!r} already exists (use --update to set a new password)", file=sys.stderr)
                return 1
            await store.set_password(args.username, password_hash)
            if args.capacity is not None or args.teams is not None:
                await store.update_agent(args.username, capacity=args.capacity, teams=_teams(args.teams))
            print(f"updated agent {args.username}")
            return 0
        role = "supervisor" if args.supervisor else "agent"
        capacity = settings.default_capacity if args.capacity is None else args.capacity
        await store.create_agent(args.username, args.name or args.username.title(), password_hash, role,
                                 capacity=capacity, teams=_teams(args.teams) or ())
        print(f"created {role} {args.username}")
        return 0
    except (ValueError, HandoffError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()


async def _migrate(args: argparse.Namespace) -> int:
    store = create_store(args.db or Settings.from_env().db_url)
    try:
        await store.open()  # opening migrates
        print("the store schema is up to date")
        return 0
    except HandoffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff_channel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (visitor sockets, inbox, API)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    agent = sub.add_parser("create-agent", help="create an inbox agent (or --update its password)")
    agent.add_argument("username")
    agent.add_argument("--name", help="display name shown to visitors, e.g. 'Sarah'")
    agent.add_argument("--supervisor", action="store_true")
    agent.add_argument("--password", help="avoid on shared machines: prefer the prompt or --password-stdin")
    agent.add_argument("--password-stdin", action="store_true")
    agent.add_argument("--update", action="store_true", help="set a new password if the agent exists")
    agent.add_argument("--capacity", type=_capacity, help="most conversations auto-routing assigns at once (default 5)")
    agent.add_argument("--teams", help="comma-separated teams, e.g. 'billing,tech'")
    agent.add_argument("--db", help="store URL (default: HANDOFF_DB_URL or the embedded SQLite file)")
    migrate = sub.add_parser("migrate", help="bring the store's schema up to date (the gateway also does it at start)")
    migrate.add_argument("--db", help="store URL (default: HANDOFF_DB_URL or the embedded SQLite file)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        from .gateway import create_app

        settings = Settings.from_env()
        app = create_app(settings)
        app.run(host=args.host or settings.host, port=args.port or settings.port, access_log=False,
                workers=1, motd=False)
        return 0
    if args.command == "create-agent":
        return asyncio.run(_create_agent(args))
    if args.command == "migrate":
        return asyncio.run(_migrate(args))
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
