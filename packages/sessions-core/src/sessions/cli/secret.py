"""``sessions secret``: print a new strong secret."""

from __future__ import annotations

import secrets

import click

#: Bytes of randomness; 48 give a 64-character secret, well over the 32 required.
DEFAULT_BYTES = 48
MIN_BYTES = 24


def new_secret(nbytes: int = DEFAULT_BYTES) -> str:
    """A URL-safe random secret of ``nbytes`` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


@click.command()
@click.option(
    "--bytes",
    "nbytes",
    type=click.IntRange(min=MIN_BYTES, max=1024),
    default=DEFAULT_BYTES,
    show_default=True,
    help="Bytes of randomness (the secret is about 4/3 as many characters).",
)
def secret(nbytes: int) -> None:
    """Print a new random secret for SESSION_SECRET."""
    click.echo(new_secret(nbytes))
