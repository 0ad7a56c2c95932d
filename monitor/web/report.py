"""``voice-monitor report TIMELINE.csv -o report.html``: one self-contained HTML file from a CSV timeline.

Reads what the live monitor writes (``--csv``/``--csv-dir``) or what ``score --windows`` writes (one timeline
per ``path``), and writes one file with the page's own chart code, styles and the rows inlined: a chart, the
transcript aligned to the windows and a per-emotion summary, readable offline and without the server. Needs
nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from monitor.errors import ConfigError

STATIC = Path(__file__).resolve().parent / "static"
REQUIRED = ("start_s", "end_s", "emotion")


def read_timeline(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The CSV's columns and rows; ConfigError (one line) when it is not a timeline."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            rows = [r for r in reader if any(v for v in r.values() if v)]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; give the CSV timeline file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 CSV file (is it an audio file? score it first)") from None
    except (OSError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    missing = [c for c in REQUIRED if c not in columns]
    if missing or not any(c.startswith("p_") for c in columns):
        raise ConfigError(
            f"{path}: not an emotion timeline (missing {', '.join(missing) or 'p_<label> columns'}); give a CSV "
            "that `voice-monitor --csv` or `voice-monitor score --windows` wrote"
        )
    return columns, rows


def group(columns: list[str], rows: list[dict[str, str]], name: str) -> list[dict]:
    """One timeline per file for ``score --windows`` output, else one for the whole CSV."""
    if "path" not in columns:
        return [{"title": name, "rows": rows}] if rows else []
    groups: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault(r.get("path", ""), []).append(r)
    return [{"title": p, "rows": rs} for p, rs in groups.items()]


def _script(text: str) -> str:
    return text.replace("</", "<\\/")  # nothing inside a <script> may close it


def render(columns: list[str], rows: list[dict[str, str]], source: str) -> str:
    data = {"columns": columns, "groups": group(columns, rows, source)}
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    chart = (STATIC / "chart.js").read_text(encoding="utf-8")
    init = (STATIC / "report.js").read_text(encoding="utf-8")
    title = f"voice-monitor report: {source}"
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
{css}
</style>
</head>
<body>
<header><h1>{html.escape(title)}</h1><span class="muted">{len(rows)} windows · written {stamp}</span></header>
<main id="report"></main>
<script type="application/json" id="vm-data">{_script(json.dumps(data, ensure_ascii=False))}</script>
<script>
{_script(chart)}
</script>
<script>
{_script(init)}
</script>
</body>
</html>
"""


def write_report(csv_path: str | Path, out: str | Path | None = None) -> tuple[Path, int]:
    """Write the report; returns (its path, the number of windows)."""
    src = Path(csv_path)
    columns, rows = read_timeline(src)
    target = Path(out) if out else src.with_suffix(".html")
    text = render(columns, rows, src.name)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target, len(rows)


def main_report(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="voice-monitor report",
        description="Write one self-contained HTML report (chart, transcript, per-emotion summary) from a CSV "
        "timeline that `voice-monitor --csv` or `voice-monitor score --windows` wrote.",
    )
    p.add_argument("timeline", metavar="TIMELINE.csv")
    p.add_argument("-o", "--out", metavar="report.html", help="output file (default: the CSV's name with .html)")
    a = p.parse_args(list(argv))
    target, n = write_report(a.timeline, a.out)
    print(f"report: {target} ({n} windows)")
    return 0
