"""Render ``report.json`` into one self-contained HTML page (no external assets)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from eval import plots

SHOWN = ["knowledge_accuracy", "knowledge_accuracy_lenient", "shuffled_accuracy",
         "majority_baseline", "unparseable_rate", "respectfulness", "awareness",
         "respectfulness_100", "awareness_100", "f1"]
# One scale (0-100) in the comparison plot, so the bars are comparable.
PLOTTED_DIFFS = ["knowledge_accuracy", "shuffled_accuracy", "unparseable_rate",
                 "respectfulness_100", "awareness_100", "f1"]
LABELS = {
    "knowledge_accuracy": "Knowledge accuracy, strict (%)",
    "knowledge_accuracy_lenient": "Knowledge accuracy, lenient: upstream substring rule (%)",
    "shuffled_accuracy": "Shuffled-option accuracy (%)",
    "majority_baseline": "Majority-label baseline (%)",
    "unparseable_rate": "Unparseable answers (%)",
    "respectfulness": "Respectfulness (1-10)",
    "awareness": "Awareness (1-10)",
    "respectfulness_100": "Respectfulness (0-100)",
    "awareness_100": "Awareness (0-100)",
    "f1": "F1 of knowledge and respectfulness (0-100)",
}


def fmt(value: float | None) -> str:
    """How every number is printed in the page (tests compare against this)."""
    return "n/a" if value is None else f"{value:.2f}"


def ordinary_rows(ordinary: dict[str, Any] | None) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, report.json key, block) of each row of the ordinary-traffic table."""
    if not ordinary:
        return []
    rows = [("All ordinary prompts", "ordinary", ordinary)]
    rows += [(name.capitalize(), f"ordinary.by_place.{name}", block)
             for name, block in ordinary["by_place"].items() if block["n"]]
    rows += [("(no place)" if country == "none" else country.title(),
              f"ordinary.per_country.{country}", block)
             for country, block in ordinary["per_country"].items()]
    return rows


def render_html(report: dict[str, Any]) -> str:
    """The HTML page for a report dict (as written to report.json)."""
    env = Environment(loader=PackageLoader("eval", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters["fmt"] = fmt
    figures = {
        "countries": plots.country_bars(report["per_country"]),
        "ordinary": plots.ordinary_bars(report.get("ordinary")),
        "intent": plots.intent_heatmap(report.get("intent")),
        "scatter": plots.scatter(report["descriptions"], report["correlation"]["overall"]),
        "comparisons": [plots.comparison_bars(c, PLOTTED_DIFFS) for c in report["comparisons"]],
    }
    return env.get_template("report.html.j2").render(
        r=report, figures=figures, shown=SHOWN, labels=LABELS,
        ordinary_rows=ordinary_rows(report.get("ordinary")),
    )
