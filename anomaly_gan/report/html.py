"""One self-contained HTML batch inspection report: images inline, no network, no external JS.

Rendered only from what detect/evaluate wrote (results.json, metrics.json, figures, panels), so
`anomaly-gan report DIR` reproduces it from an archived results folder.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
from pathlib import Path

import cv2
import numpy as np

from anomaly_gan.fsutil import atomic_write_text
from anomaly_gan.report.plots import histogram_figure
from anomaly_gan.report.records import Record, Results, ResultsError, read_results

FIGURES = (("roc.png", "ROC"), ("pr.png", "Precision-recall"), ("histogram.png", "Score distributions"),
           ("threshold_sweep.png", "Trade-off against threshold"))

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
img.panel{height:96px;cursor:zoom-in} td.file{max-width:220px;word-break:break-all;font-size:12px}
.why{display:flex;align-items:center;gap:4px;font-size:11px;white-space:nowrap}
.why span{width:52px;color:#555} .why i{display:inline-block;height:8px;background:#c62828}
.why b{font-weight:400;color:#555} .warn{background:#fff4e5;border:1px solid #f0b429;padding:6px 10px}
.dist img{width:460px;max-width:100%}
.bad{color:#b00020;font-weight:600} .ok{color:#1b5e20}
.figs img{width:420px;max-width:48%;margin:4px}
.metrics td{padding:2px 14px 2px 0;font-size:13px}
#lightbox{display:none;position:fixed;inset:0;background:rgba(0,0,0,.85);align-items:center;justify-content:center;flex-direction:column}
#lightbox img{width:90vw;image-rendering:pixelated} #lightbox p{color:#fff;font-size:13px}
.legend{font-size:12px;color:#555}
@media print{.controls,#lightbox{display:none!important} tr{page-break-inside:avoid} img.panel{height:64px}}
"""

SCRIPT = """
function onlyBad(on){let shown=0;document.querySelectorAll('tr.scan').forEach(
  r=>{const hide=on&&r.dataset.bad!=='1';r.style.display=hide?'none':'';if(!hide)shown++});
  document.getElementById('nothing').style.display=(on&&shown===0)?'':'none'}
function zoom(img){const b=document.getElementById('lightbox'),big=b.querySelector('img');
big.onerror=()=>{big.onerror=null;big.src=img.src};big.src=img.dataset.full;
b.querySelector('p').textContent=img.alt;b.style.display='flex'}
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _thumbnail(path: Path) -> str:
    """Panels are stored 3x enlarged with captions; the report embeds them at half that size, and
    the enlarged view loads the panel file itself (maps/ beside the report)."""
    image = cv2.imread(str(path))
    if image is None:
        return ""
    small = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return _data_uri(cv2.imencode(".png", small)[1].tobytes())


def _why(record: Record) -> str:
    """A bar per component that raised the score, largest first: 1 = one good-scan spread."""
    raised = sorted(((v, k) for k, v in record.contributions.items() if v >= 0.05), reverse=True)[:3]
    if not raised:
        return '<span class="legend">like good scans</span>'
    return "".join(f'<div class="why"><span>{html.escape(k)}</span><i style="width:{min(v, 8) * 10:.0f}px"></i>'
                   f"<b>+{v:.1f}</b></div>" for v, k in raised)


def _distribution(results: Results) -> str:
    """The first model's held-out good scores beside this run's, with the threshold."""
    if not results.models:
        return ""
    model = results.models[0]
    run = [r.score for r in results.records if r.class_ == model.class_]
    if not model.good_scores or not run:
        return ""
    png = histogram_figure(np.array(model.good_scores), np.array(run), model.threshold,
                           ("held-out good scans (calibration)", "this run"), f"Scores, {model.class_}", (6, 2.6))
    return f'<div class="dist"><img src="{_data_uri(png)}" alt="score distribution"></div>'


def _nothing_flagged(records: list[Record]) -> str:
    if not records:
        return "No scan was scored."
    closest = max(records, key=lambda r: r.score - r.threshold)
    return (f"No scan above the threshold ({closest.threshold:.3f}); the closest is "
            f"{html.escape(closest.scan)} with score {closest.score:.3f}.")


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _metrics_section(metrics: dict, folder: Path) -> str:
    rows = [("AUROC", metrics.get("auroc")), ("average precision", metrics.get("average_precision")),
            ("F1 max", metrics.get("f1_max")), ("threshold at F1 max", metrics.get("f1_threshold")),
            ("Youden J threshold", metrics.get("youden_threshold")),
            ("pixel AUROC", metrics.get("pixel_auroc")), ("AU-PRO (FPR 0.3)", metrics.get("au_pro_0.3")),
            ("object-pixel AUROC", metrics.get("object_pixel_auroc")),
            ("object AU-PRO (FPR 0.3)", metrics.get("object_au_pro_0.3"))]
    at = metrics["at_threshold"]
    rows += [(f"{k} at threshold", at[k]) for k in ("accuracy", "tpr", "tnr", "far")]
    c = at["confusion"]
    rows.append(("confusion (tn fp / fn tp)", f"{c['tn']} {c['fp']} / {c['fn']} {c['tp']}"))
    rows += [(f"AUROC {label} vs good", value) for label, value in metrics.get("auroc_by_label", {}).items()]
    table = "".join(f"<tr><td>{html.escape(k)}</td><td><b>{_fmt(v)}</b></td></tr>" for k, v in rows)
    figures = "".join(f'<img src="{_data_uri((folder / name).read_bytes())}" alt="{title}">'
                      for name, title in FIGURES if (folder / name).exists())
    return f'<h2>Evaluation</h2><table class="metrics">{table}</table><div class="figs">{figures}</div>'


def _partial_banner(results: Results) -> str:
    return (f"<p class='bad'>Partial run: interrupted after {len(results.records)} scans. The scans below "
            "are complete; scans not listed were not scored.</p>")


def render_report(folder: Path) -> Path:
    results = read_results(folder)
    metrics_path = folder / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else None
        evaluation = _metrics_section(metrics, folder) if metrics is not None else ""
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ResultsError(f"{metrics_path}: not a metrics file anomaly-gan wrote ({type(e).__name__}: {e})"
                           ) from None
    records = sorted(results.records, key=lambda r: r.score, reverse=True)
    models = "".join(
        f"<tr><td>model</td><td>{html.escape(m.model)} ({html.escape(m.objective)})</td></tr>"
        f"<tr><td>threshold</td><td>{m.threshold:.3f}: {html.escape(m.threshold_origin)}</td></tr>"
        for m in results.models)
    stamp = datetime.datetime.fromtimestamp((folder / "results.json").stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    labelled = metrics is not None
    rows = []
    for rank, r in enumerate(records, 1):
        verdict = '<span class="bad">ANOMALOUS</span>' if r.anomalous else '<span class="ok">good</span>'
        alt = html.escape(f"{r.scan}  score {r.score:.3f}")
        rows.append(
            f'<tr class="scan" data-bad="{int(r.anomalous)}"><td class="num">{rank}</td>'
            f'<td><img class="panel" src="{_thumbnail(folder / r.map)}" data-full="{html.escape(r.map)}" '
            f'alt="{alt}" onclick="zoom(this)"></td><td class="file">{html.escape(r.scan)}</td>'
            f"<td>{html.escape(r.label)}</td>"
            f'<td>{html.escape(r.class_)}</td><td class="num">{r.score:.3f}</td><td class="num">{r.threshold:.3f}</td>'
            f"<td>{verdict}</td><td>{_why(r)}</td></tr>")
    undertrained = "".join(f"<p class='warn'>Model {html.escape(m.model)} looks undertrained: "
                           f"{html.escape(m.undertrained)}. Its verdicts are unreliable; train longer.</p>"
                           for m in results.models if m.undertrained)
    cards = [("scans", len(results.records)), ("anomalous", results.anomalous),
             ("unreadable", len(results.unreadable)), ("mode", results.mode)]
    if labelled and metrics.get("auroc") is not None:
        cards.append(("AUROC", f"{metrics['auroc']:.3f}"))
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>anomaly-gan {"evaluation" if labelled else "inspection"} report</title><style>{STYLE}</style>
<script>{SCRIPT}</script></head><body>
<h1>anomaly-gan {"evaluation" if labelled else "batch inspection"} report</h1>
<table class="meta">{models}<tr><td>written</td><td>{stamp}</td></tr></table>
{_partial_banner(results) if results.partial else ""}{undertrained}
<div class="cards">{"".join(f"<div class='card'><b>{_fmt(v)}</b><span>{k}</span></div>" for k, v in cards)}</div>
{_distribution(results)}
{evaluation}
<h2>Scans, most anomalous first</h2>
<p class="legend">Each picture, cropped to the object: colour | depth | reconstructed colour | reconstructed depth |
colour map | depth map | combined map, each map over the colour image (brighter = more anomalous; the caption
gives the value drawn at full heat). Click a picture to enlarge it. "Why": the components that raised
the score, in spreads of the held-out good scans' scores (+3 = three spreads above an average good scan).
"Label" is the folder the scan came from (good, a defect kind, or a class).</p>
<div class="controls"><label><input type="checkbox" onchange="onlyBad(this.checked)"> anomalous only</label></div>
<p id="nothing" class="legend" style="display:none">{_nothing_flagged(records)}</p>
<table class="scans"><tr><th>#</th><th>scan</th><th>file</th><th>label</th>
<th>class</th><th>score</th><th>threshold</th><th>verdict</th><th>why</th></tr>{"".join(rows)}</table>
{"".join(f"<p class='bad'>unreadable: {html.escape(u)}</p>" for u in results.unreadable)}
{"".join(f"<p class='legend'>note: {html.escape(n)}</p>" for n in results.notes)}
<div id="lightbox" onclick="this.style.display='none'"><img alt=""><p></p></div>
</body></html>"""
    path = folder / "report.html"
    atomic_write_text(path, page)
    return path
