"""Charts of the served archive as inline SVG, drawn on the server: articles per month, and per
section and per author over time. No script and nothing fetched: they show under the strict
Content-Security-Policy and with no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import markupsafe

#: Articles per month, per section per month and per author per month (SQLite SQL; months are
#: ``YYYY-MM`` of ``published_at``).
PER_MONTH_SQL = """
select substr(published_at, 1, 7) as month, count(*) as n from articles
where published_at is not null group by month order by month"""
PER_SECTION_SQL = """
select section as name, substr(published_at, 1, 7) as month, count(*) as n from articles
where published_at is not null and section is not null and section in (
  select section from articles where section is not null
  group by section order by count(*) desc, section limit :top)
group by name, month"""
PER_AUTHOR_SQL = """
select au.name as name, substr(a.published_at, 1, 7) as month, count(*) as n
from articles a join article_authors aa on aa.article_id = a.id
join authors au on au.id = aa.author_id
where a.published_at is not null and au.id in (
  select author_id from article_authors group by author_id order by count(*) desc, author_id
  limit :top)
group by name, month"""

BAR_COLOUR = "#276890"


def months_between(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last``, both included."""
    year, month = int(first[:4]), int(first[5:7])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


@dataclass
class Series:
    name: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _label_every(n_months: int) -> int:
    return 1 if n_months <= 12 else 3 if n_months <= 36 else 12


def bar_chart(
    counts: dict[str, int], months: Sequence[str], *, title: str, height: int = 140
) -> markupsafe.Markup:
    """One bar per month (zero months too), a tooltip on each, a few month labels."""
    bar = max(4, min(28, 720 // max(len(months), 1)))
    left, bottom, top = 34, 20, 8
    width = left + bar * len(months) + 4
    most = max(counts.values(), default=0) or 1
    plot = height - bottom - top
    parts = [
        f'<svg class="rs-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{markupsafe.escape(title)}</title>",
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="10">{most}</text>',
        f'<text x="{left - 4}" y="{top + plot}" text-anchor="end" font-size="10">0</text>',
        f'<line x1="{left}" y1="{top + plot}" x2="{width - 2}" y2="{top + plot}" stroke="#999"/>',
    ]
    every = _label_every(len(months))
    for i, month in enumerate(months):
        n = counts.get(month, 0)
        h = round(plot * n / most)
        x = left + i * bar
        label = markupsafe.escape(f"{month}: {n} article{'s' * (n != 1)}")
        parts.append(
            f'<rect x="{x + 1}" y="{top + plot - h}" width="{bar - 2}" height="{h}" '
            f'fill="{BAR_COLOUR}"><title>{label}</title></rect>'
        )
        yearly = every == 12 and (month.endswith("-01") or i == 0)
        if yearly or (every < 12 and i % every == 0):
            text = month if every < 12 else month[:4]
            parts.append(
                f'<text x="{x}" y="{height - 6}" font-size="10">{markupsafe.escape(text)}</text>'
            )
    parts.append("</svg>")
    return markupsafe.Markup("".join(parts))


def small_multiples(
    series: Sequence[Series], months: Sequence[str], *, what: str
) -> markupsafe.Markup:
    """One row of monthly bars per series (same scale across rows), most articles first."""
    if not series or not months:
        return markupsafe.Markup("")
    bar = max(3, min(20, 600 // len(months)))
    label_w, row_h = 190, 26
    most = max((max(s.counts.values(), default=0) for s in series), default=0) or 1
    ordered = sorted(series, key=lambda s: (-s.total, s.name))
    width = label_w + bar * len(months) + 60
    height = row_h * len(ordered) + 18
    parts = [
        f'<svg class="rs-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>Articles per month by {markupsafe.escape(what)}</title>",
    ]
    for row, s in enumerate(ordered):
        y = row * row_h
        name = s.name if len(s.name) <= 28 else s.name[:27] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row_h - 9}" text-anchor="end" font-size="12">'
            f"{markupsafe.escape(name)}</text>"
        )
        for i, month in enumerate(months):
            n = s.counts.get(month, 0)
            if not n:
                continue
            h = max(2, round((row_h - 6) * n / most))
            tip = markupsafe.escape(f"{s.name}, {month}: {n} article{'s' * (n != 1)}")
            parts.append(
                f'<rect x="{label_w + i * bar}" y="{y + row_h - 4 - h}" width="{max(bar - 1, 2)}" '
                f'height="{h}" fill="{BAR_COLOUR}"><title>{tip}</title></rect>'
            )
        parts.append(
            f'<text x="{label_w + bar * len(months) + 6}" y="{y + row_h - 9}" font-size="11" '
            f'fill="#555">{s.total}</text>'
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 4}" font-size="10">{markupsafe.escape(months[0])}</text>'
        f'<text x="{label_w + bar * len(months)}" y="{height - 4}" text-anchor="end" '
        f'font-size="10">{markupsafe.escape(months[-1])}</text>'
    )
    parts.append("</svg>")
    return markupsafe.Markup("".join(parts))


def series_from_rows(rows: Sequence[tuple[str, str, int]]) -> list[Series]:
    """(name, month, n) rows as one series per name."""
    by_name: dict[str, dict[str, int]] = {}
    for name, month, n in rows:
        by_name.setdefault(name, {})[month] = n
    return [Series(name, counts) for name, counts in by_name.items()]


async def archive_charts(db, top: int = 8) -> dict[str, markupsafe.Markup] | None:
    """The three charts for a Datasette database, or None when no article is dated."""
    per_month = {r[0]: r[1] for r in (await db.execute(PER_MONTH_SQL)).rows}
    if not per_month:
        return None
    months = months_between(min(per_month), max(per_month))
    sections = series_from_rows((await db.execute(PER_SECTION_SQL, {"top": top})).rows)
    authors = series_from_rows((await db.execute(PER_AUTHOR_SQL, {"top": top})).rows)
    return {
        "per_month": bar_chart(per_month, months, title="Articles per month"),
        "per_section": small_multiples(sections, months, what="section"),
        "per_author": small_multiples(authors, months, what="author"),
    }
