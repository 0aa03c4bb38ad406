"""axe-core in the page under test: the vendored copy (static/vendor/axe-core), never a CDN."""
from __future__ import annotations

_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').split('\\n').slice(1).join(' ')),
  }));
}"""


def violations(page) -> list[dict]:
    """axe's violations on the page as it is now (all of axe's default rules: WCAG 2.x A/AA and best practices)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Loaded by URL from our own static folder: the pages' CSP allows scripts from 'self' only.
        page.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
    return page.evaluate(_RUN)


def describe(found: dict[str, list[dict]]) -> str:
    return "\n".join(f"{url}: {v['id']} ({v['impact']}) {v['help']} -> {v['nodes']}"
                     for url, listed in found.items() for v in listed)
