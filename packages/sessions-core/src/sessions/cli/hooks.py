"""``sessions hooks``: the hooks plugins can implement, and who implements them."""

from __future__ import annotations

import click

from .hookdoc import hook_functions, render_reference


@click.command()
@click.option("--markdown", is_flag=True, help="Print the hook reference page (docs/hooks.md).")
def hooks(markdown: bool) -> None:
    """List the plugin hooks and the installed plugins implementing each."""
    if markdown:
        click.echo(render_reference(), nl=False)
        return
    from ..plugins import load_plugins

    hook = load_plugins().pm.hook
    for fn in hook_functions():
        impls = [impl.plugin_name for impl in getattr(hook, fn.__name__).get_hookimpls()]
        summary = (fn.__doc__ or "").strip().splitlines()[0]
        click.echo(f"{fn.__name__}: {summary}")
        click.echo(f"    implemented by: {', '.join(impls) or 'none'}")
