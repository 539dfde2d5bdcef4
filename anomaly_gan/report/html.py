"""One self-contained HTML batch inspection report: images inline, no network, no external JS.

Rendered only from what detect/evaluate wrote (run.json, results.jsonl, metrics.json, figures,
panels), so `anomaly-gan report DIR` reproduces it from an archived results folder. It stays small
for any run size: pictures for the N most anomalous scans only; every scan is in a sortable, paged
table drawn by the page's script from compact rows, linking its panel file when one was drawn.
The records are read twice, one at a time, and the page is written as it is produced.
"""

from __future__ import annotations

import base64
import datetime
import heapq
import html
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from anomaly_gan.fsutil import atomic_write_chunks
from anomaly_gan.report.records import (
    FINDING_TITLES,
    RECORDS,
    REPORT_TOP,
    RUN,
    Record,
    Results,
    ResultsError,
    read_records,
    read_results,
)
from anomaly_gan.report.svg import histogram_svg

PAGE = 100  # rows per page of the table of all scans

FIGURES = (
    ("roc.png", "ROC"),
    ("pr.png", "Precision-recall"),
    ("histogram.png", "Score distributions"),
    ("threshold_sweep.png", "Trade-off against threshold"),
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:24px 0 8px}
.meta{color:#555;font-size:13px} .meta td{padding:1px 12px 1px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px} .card span{font-size:12px;color:#666}
table.scans{border-collapse:collapse;width:100%;font-size:13px}
table.scans th,table.scans td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:middle}
table.scans td.num{text-align:right;font-variant-numeric:tabular-nums}
img.panel{height:96px;cursor:zoom-in} td.file{min-width:180px;max-width:260px;word-break:break-all;font-size:12px}
.why{display:flex;align-items:center;gap:4px;font-size:11px;white-space:nowrap}
.why span{width:52px;color:#555} .why i{display:inline-block;height:8px;background:#c62828}
.why b{font-weight:400;color:#555} .warn{background:#fff4e5;border:1px solid #f0b429;padding:6px 10px}
.dist svg{max-width:100%;height:auto}
.bad{color:#b00020;font-weight:600} .ok{color:#1b5e20}
.figs img{width:420px;max-width:48%;margin:4px}
.metrics td{padding:2px 14px 2px 0;font-size:13px}
#lightbox{display:none;position:fixed;inset:0;background:rgba(0,0,0,.85);align-items:center;justify-content:center;flex-direction:column}
#lightbox img{width:90vw;image-rendering:pixelated} #lightbox p{color:#fff;font-size:13px}
.legend{font-size:12px;color:#555} th.sort{cursor:pointer} .pager{margin:8px 0;font-size:13px}
@media print{.controls,#lightbox{display:none!important} tr{page-break-inside:avoid} img.panel{height:64px}}
"""

SCRIPT = """
let sortKey=3,sortDesc=true,page=0,badOnly=false,view=null;
const COLS=['file','label','class','score','threshold','verdict','panel'];
function onlyBad(on){let shown=0;document.querySelectorAll('tr.scan').forEach(
  r=>{const hide=on&&r.dataset.bad!=='1';r.style.display=hide?'none':'';if(!hide)shown++});
  document.getElementById('nothing').style.display=(on&&shown===0)?'':'none';
  badOnly=on;view=null;page=0;drawAll()}
function zoom(img){const b=document.getElementById('lightbox'),big=b.querySelector('img');
big.onerror=()=>{big.onerror=null;big.src=img.src};big.src=img.dataset.full;
b.querySelector('p').textContent=img.alt;b.style.display='flex'}
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
function rowsView(){if(view)return view;const k=sortKey,d=sortDesc?-1:1;
  view=ROWS.filter(r=>!badOnly||r[5]);
  view.sort((a,b)=>{const x=a[k]??'',y=b[k]??'';return x<y?-d:x>y?d:0});return view}
function sortBy(k){if(sortKey===k)sortDesc=!sortDesc;else{sortKey=k;sortDesc=k>=3}view=null;page=0;drawAll()}
function turn(n){page+=n;drawAll()}
function drawAll(){const v=rowsView(),pages=Math.max(1,Math.ceil(v.length/PAGE));
  page=Math.max(0,Math.min(page,pages-1));
  const head='<tr><th>#</th>'+COLS.map((c,i)=>`<th class="sort" onclick="sortBy(${i})">${c}${
    i===sortKey?(sortDesc?' &#9660;':' &#9650;'):''}</th>`).join('')+'</tr>';
  const body=v.slice(page*PAGE,(page+1)*PAGE).map((r,i)=>`<tr><td class="num">${page*PAGE+i+1}</td>
<td class="file">${esc(r[0])}</td><td>${esc(r[1])}</td><td>${esc(r[2])}</td><td class="num">${r[3].toFixed(3)}</td>
<td class="num">${r[4].toFixed(3)}</td>
<td>${r[5]?`<span class="bad">${esc(r[7])}</span>`:'<span class="ok">good</span>'}</td>
<td>${r[6]?`<a href="${esc(r[6])}">panel</a>`:''}</td></tr>`).join('');
  document.getElementById('all').innerHTML=`<table class="scans">${head}${body}</table>`;
  document.querySelector('.pager').innerHTML=pages<2?'':`<button onclick="turn(-1)">&larr;</button>
page ${page+1} of ${pages} (${v.length} scans) <button onclick="turn(1)">&rarr;</button>`}
"""


def _data_uri(data: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def _thumbnail(path: Path) -> str:
    """Panels are stored enlarged (192-pixel tiles) with captions; the report embeds them at half
    that size (the JPEG decoder scales while it decodes), and the enlarged view loads the panel
    file itself (maps/ beside the report)."""
    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2)
    if image is None:
        return ""
    return _data_uri(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes(), "jpeg")


def _why(record: Record) -> str:
    """Each finding's score, then a bar per component that raised one, largest first: 1 = one
    good-scan spread."""
    findings = ", ".join(f"{FINDING_TITLES.get(k, k)} {v:+.1f}" for k, v in record.findings.items())
    head = f'<div class="legend">{html.escape(findings)}</div>' if findings else ""
    raised = sorted(((v, k) for k, v in record.contributions.items() if v >= 0.05), reverse=True)[:3]
    if not raised:
        return head + '<span class="legend">like good scans</span>'
    return head + "".join(
        f'<div class="why"><span>{html.escape(k)}</span><i style="width:{min(v, 8) * 10:.0f}px"></i>'
        f"<b>+{v:.1f}</b></div>"
        for v, k in raised
    )


def _distribution(results: Results, run: list[float]) -> str:
    """The first model's held-out good scores beside this run's (`run`), with the threshold."""
    if not results.models:
        return ""
    model = results.models[0]
    if not model.good_scores or not run:
        return ""
    svg = histogram_svg(
        (np.array(model.good_scores), np.array(run)),
        ("held-out good scans (calibration)", "this run"),
        model.threshold,
        f"Scores, {model.class_}",
    )
    return f'<div class="dist">{svg}</div>'


def _nothing_flagged(closest: Record | None) -> str:
    if closest is None:
        return "No scan was scored."
    return (
        f"No scan above the threshold ({closest.threshold:.3f}); the closest is "
        f"{html.escape(closest.scan)} with score {closest.score:.3f}."
    )


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _metrics_section(metrics: dict, folder: Path) -> str:
    rows = [
        ("AUROC", metrics.get("auroc")),
        ("average precision", metrics.get("average_precision")),
        ("F1 max", metrics.get("f1_max")),
        ("threshold at F1 max", metrics.get("f1_threshold")),
        ("Youden J threshold", metrics.get("youden_threshold")),
        ("pixel AUROC", metrics.get("pixel_auroc")),
        ("AU-PRO (FPR 0.3)", metrics.get("au_pro_0.3")),
        ("object-pixel AUROC", metrics.get("object_pixel_auroc")),
        ("object AU-PRO (FPR 0.3)", metrics.get("object_au_pro_0.3")),
    ]
    at = metrics["at_threshold"]
    rows += [(f"{k} at threshold", at[k]) for k in ("accuracy", "tpr", "tnr", "far")]
    c = at["confusion"]
    rows.append(("confusion (tn fp / fn tp)", f"{c['tn']} {c['fp']} / {c['fn']} {c['tp']}"))
    rows += [(f"AUROC {label} vs good", value) for label, value in metrics.get("auroc_by_label", {}).items()]
    table = "".join(f"<tr><td>{html.escape(k)}</td><td><b>{_fmt(v)}</b></td></tr>" for k, v in rows)
    figures = "".join(
        f'<img src="{_data_uri((folder / name).read_bytes())}" alt="{title}">'
        for name, title in FIGURES
        if (folder / name).exists()
    )
    return f'<h2>Evaluation</h2><table class="metrics">{table}</table><div class="figs">{figures}</div>'


def _partial_banner(results: Results) -> str:
    return (
        f"<p class='bad'>Partial run: interrupted after {results.scans} scans. The scans below "
        "are complete; scans not listed were not scored.</p>"
    )


class _Pass:
    """One read of the records: the N most anomalous, the scores of the first model's class (for
    the histogram) and the scan closest to its threshold; nothing else is kept."""

    def __init__(self, folder: Path, results: Results, top: int) -> None:
        heap: list[tuple[float, int, Record]] = []
        self.run: list[float] = []
        self.closest: Record | None = None
        first = results.models[0].class_ if results.models else None
        for n, r in enumerate(read_records(folder)):
            if r.class_ == first:
                self.run.append(r.score)
            if self.closest is None or r.score - r.threshold > self.closest.score - self.closest.threshold:
                self.closest = r
            if top:
                (heapq.heappush if len(heap) < top else heapq.heappushpop)(heap, (r.score, -n, r))
        self.top = [r for _, _, r in sorted(heap, reverse=True)]


def _panel_link(path: str | None, folder: Path, roots: list[Path]) -> str | None:
    """A record's panel path as the report may link it: relative, with no scheme, and naming a
    file inside the run folder or one of the shard folders it merged; anything else (a tampered
    record's `javascript:` or `/etc/passwd`) gets no link at all."""
    if not path or Path(path).is_absolute() or ":" in path.split("/")[0] or "\\" in path:
        return None
    target = (folder / path).resolve()
    if not any(target.is_relative_to(root.resolve()) for root in [folder, *roots]) or not target.is_file():
        return None
    return path


def _top_row(rank: int, r: Record, folder: Path, roots: list[Path]) -> str:
    verdict = f'<span class="bad">{html.escape(r.verdict)}</span>' if r.anomalous else '<span class="ok">good</span>'
    alt = html.escape(f"{r.scan}  score {r.score:.3f}")
    link = _panel_link(r.map, folder, roots)
    picture = (
        f'<img class="panel" src="{_thumbnail(folder / link)}" data-full="{html.escape(link)}" '
        f'alt="{alt}" onclick="zoom(this)">'
        if link
        else '<span class="legend">no panel</span>'
    )
    return (
        f'<tr class="scan" data-bad="{int(r.anomalous)}"><td class="num">{rank}</td><td>{picture}</td>'
        f'<td class="file">{html.escape(r.scan)}</td><td>{html.escape(r.label)}</td>'
        f'<td>{html.escape(r.class_)}</td><td class="num">{r.score:.3f}</td><td class="num">{r.threshold:.3f}</td>'
        f"<td>{verdict}</td><td>{_why(r)}</td></tr>"
    )


def _table_rows(folder: Path, roots: list[Path]) -> Iterator[str]:
    """Every record as a compact JSON row for the page's table, written as read."""
    for n, r in enumerate(read_records(folder)):
        row = [
            r.scan,
            r.label,
            r.class_,
            round(r.score, 4),
            round(r.threshold, 4),
            int(r.anomalous),
            _panel_link(r.map, folder, roots),
            r.verdict,
        ]
        yield ("," if n else "") + json.dumps(row).replace("</", "<\\/") + "\n"


def _metrics(folder: Path) -> dict | None:
    path = folder / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not a metrics file anomaly-gan wrote ({type(e).__name__}: {e})") from None


def render_report(folder: Path, top: int = REPORT_TOP) -> Path:
    """Write folder/report.html from the results files; `top` scans are shown with pictures."""
    results = read_results(folder)
    metrics = _metrics(folder)
    try:
        evaluation = _metrics_section(metrics, folder) if metrics is not None else ""
    except (KeyError, TypeError, AttributeError) as e:
        raise ResultsError(
            f"{folder / 'metrics.json'}: not a metrics file anomaly-gan wrote ({type(e).__name__}: {e})"
        ) from None
    seen = _Pass(folder, results, top)
    roots = [Path(shard) for shard in results.merged]  # a merged run's panels stay in its shards
    models = "".join(
        f"<tr><td>model</td><td>{html.escape(m.model)} ({html.escape(m.objective)})</td></tr>"
        f"<tr><td>threshold</td><td>{m.threshold:.3f}: {html.escape(m.threshold_origin)}</td></tr>"
        for m in results.models
    )
    written = max((folder / name).stat().st_mtime for name in (RUN, RECORDS) if (folder / name).exists())
    stamp = datetime.datetime.fromtimestamp(written).strftime("%Y-%m-%d %H:%M")
    labelled = metrics is not None
    undertrained = "".join(
        f"<p class='warn'>Model {html.escape(m.model)} looks undertrained: "
        f"{html.escape(m.undertrained)}. Its verdicts are unreliable; train longer.</p>"
        for m in results.models
        if m.undertrained
    )
    cards = [
        ("scans", results.scans),
        ("anomalous", results.anomalous),
        ("unreadable", len(results.unreadable)),
        ("mode", results.mode),
    ]
    if labelled and metrics.get("auroc") is not None:
        cards.append(("AUROC", f"{metrics['auroc']:.3f}"))
    shown = f"The {len(seen.top)} most anomalous scans" if len(seen.top) < results.scans else "Scans"
    head = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>anomaly-gan {"evaluation" if labelled else "inspection"} report</title><style>{STYLE}</style>
<script>const PAGE={PAGE};{SCRIPT}</script></head><body>
<h1>anomaly-gan {"evaluation" if labelled else "batch inspection"} report</h1>
<table class="meta">{models}<tr><td>written</td><td>{stamp}</td></tr>{_origin(results)}</table>
{_partial_banner(results) if results.partial else ""}{undertrained}
<div class="cards">{"".join(f"<div class='card'><b>{_fmt(v)}</b><span>{k}</span></div>" for k, v in cards)}</div>
{_distribution(results, seen.run)}
{evaluation}
<div class="controls"><label><input type="checkbox" onchange="onlyBad(this.checked)"> anomalous only</label></div>
<h2>{shown}, most anomalous first</h2>
<p class="legend">Each picture, cropped to the object: colour | depth | reconstructed colour | reconstructed depth |
colour map | depth map | combined map, each map over the colour image (brighter = more anomalous; the caption
gives the value drawn at full heat). Click a picture to enlarge it. "Why": the components that raised
the score, in spreads of the held-out good scans' scores (+3 = three spreads above an average good scan).
"Label" is the folder the scan came from (good, a defect kind, or a class).</p>
<p id="nothing" class="legend" style="display:none">{_nothing_flagged(seen.closest)}</p>
<table class="scans"><tr><th>#</th><th>scan</th><th>file</th><th>label</th>
<th>class</th><th>score</th><th>threshold</th><th>verdict</th><th>why</th></tr>
{"".join(_top_row(rank, r, folder, roots) for rank, r in enumerate(seen.top, 1))}</table>
<h2>All {results.scans} scans</h2>
<p class="legend">Click a column to sort; "panel" opens the scan's picture where one was drawn (flagged scans and
the most anomalous; `detect --panels all` draws one for every scan).</p>
<div id="all"></div><div class="pager"></div>
<script>const ROWS=[
"""
    tail = f"""];drawAll()</script>
{_unreadable(results.unreadable)}
{"".join(f"<p class='legend'>note: {html.escape(n)}</p>" for n in results.notes)}
<div id="lightbox" onclick="this.style.display='none'"><img alt=""><p></p></div>
</body></html>"""
    path = folder / "report.html"
    atomic_write_chunks(path, itertools.chain([head], _table_rows(folder, roots), [tail]))
    return path


def _origin(results: Results) -> str:
    if results.shard is not None:
        return f"<tr><td>slice</td><td>{results.shard} of {results.shard.discovered} scans</td></tr>"
    if results.merged:
        return f"<tr><td>merged from</td><td>{len(results.merged)} shards</td></tr>"
    return ""


def _unreadable(lines: list[str], shown: int = 200) -> str:
    more = (
        f"<p class='bad'>and {len(lines) - shown} more unreadable files (all are listed in {RUN})</p>"
        if len(lines) > shown
        else ""
    )
    return "".join(f"<p class='bad'>unreadable: {html.escape(u)}</p>" for u in lines[:shown]) + more
