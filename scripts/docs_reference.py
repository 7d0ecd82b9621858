"""Writes the API reference pages while mkdocs builds (the gen-files plugin runs it).

One page per public module of every published package, found by walking each
package's ``src/`` directory, so a module added later appears without editing
anything; mkdocstrings renders each page from the module's docstrings. The
navigation (``reference/SUMMARY.md``) is read by the literate-nav plugin.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
#: The published distributions, in the order the reference lists them.
PACKAGES = [
    "sessions-core",
    "sessions-file",
    "sessions-redis",
    "sessions-sql",
    "sessions-memcached",
]


def public_modules(src: Path) -> list[tuple[str, ...]]:
    """Dotted module paths under ``src``, packages before their modules, sorted."""
    found = []
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        elif parts[-1] == "__main__":
            continue
        if any(part.startswith("_") for part in parts):
            continue
        found.append(parts)
    return sorted(found)


OVERVIEW = """# API reference

Generated from the docstrings, one page per public module. The names to import
in an application are the ones `sessions` exports ([`sessions`](sessions/index.md));
the driver packages are selected by name in the configuration and rarely
imported, except `sessions_sql.make_table` for migrations.

| distribution | package |
|---|---|
"""

nav = mkdocs_gen_files.Nav()
nav["Overview"] = "index.md"
with mkdocs_gen_files.open("reference/index.md", "w") as handle:
    handle.write(OVERVIEW)
    for distribution in PACKAGES:
        (package,) = [p.name for p in (ROOT / "packages" / distribution / "src").iterdir()]
        handle.write(f"| `{distribution}` | [`{package}`]({package}/index.md) |\n")
for distribution in PACKAGES:
    for parts in public_modules(ROOT / "packages" / distribution / "src"):
        name = ".".join(parts)
        page = Path(*parts, "index.md") if len(parts) == 1 else Path(*parts).with_suffix(".md")
        nav[parts] = page.as_posix()
        with mkdocs_gen_files.open(Path("reference", page), "w") as handle:
            handle.write(f"# `{name}`\n\n::: {name}\n")
        source = Path("packages", distribution, "src", *parts)
        mkdocs_gen_files.set_edit_path(Path("reference", page), source)

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as handle:
    handle.writelines(nav.build_literate_nav())
