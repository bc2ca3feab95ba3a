"""URL rules whose url_for() builders are compiled the first time they are used (issue 12, start-up).

Werkzeug compiles two Python functions per rule (building its URL with and without extra query
arguments) when the rule is added: for our ~135 routes that is ~45 ms of every start-up, most of it
for URLs a given process never builds. This rule compiles each builder with werkzeug's own code on its
first call and keeps it, so every URL is built exactly as before. Matching is untouched.

If a werkzeug release renames the private `_compile_builder`, this override is simply never called and
the builders are compiled eagerly again (slower start-up, same URLs): tests/test_lean_imports.py checks
that url_for still builds every kind of URL.
"""
from __future__ import annotations

from werkzeug.routing import Rule


class LazyBuildRule(Rule):
    def _compile_builder(self, append_unknown: bool = True):
        compile_builder = super()._compile_builder
        attribute = "_build_unknown" if append_unknown else "_build"

        def build(rule, *args, **kwargs):
            compiled = compile_builder(append_unknown).__get__(rule, None)
            setattr(rule, attribute, compiled)  # later calls go straight to the compiled builder
            return compiled(*args, **kwargs)

        return build
