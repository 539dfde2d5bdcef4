"""The live inspection page `anomaly-gan watch --serve` shows: the latest scans with their verdicts,
what fired and their panels, counts per hour, the models and their thresholds, updated every
second. A Starlette app served by uvicorn in a thread of the watch process; the page is one
self-contained HTML file (no remote scripts, styles or fonts) that polls /state.
"""

from __future__ import annotations

import collections
import datetime
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from anomaly_gan.report.records import FINDING_TITLES, ModelUsed, Record

LATEST = 60  # scans the page lists


@dataclass
class LiveState:
    """What the page shows, fed by the watch loop (thread-safe)."""

    out: Path  # the watch's --out: panels are served from its day folders
    watching: str  # the folder watched, and how arrivals are noticed
    models: list[ModelUsed] = field(default_factory=list)
    latest: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATEST))
    hours: dict[str, list[int]] = field(default_factory=dict)  # "YYYY-MM-DD HH" -> [scans, anomalous]
    problems: collections.deque = field(default_factory=lambda: collections.deque(maxlen=10))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, day: str, records: list[Record], problems: list[str], now: datetime.datetime) -> None:
        hour = now.strftime("%Y-%m-%d %H")
        with self.lock:
            counts = self.hours.setdefault(hour, [0, 0])
            for r in records:
                counts[0] += 1
                counts[1] += r.anomalous
                self.latest.appendleft(
                    {
                        "time": now.strftime("%H:%M:%S"),
                        "scan": r.scan,
                        "class": r.class_,
                        "score": round(r.score, 3),
                        "threshold": round(r.threshold, 3),
                        "anomalous": r.anomalous,
                        "verdict": r.verdict,
                        "fired": [FINDING_TITLES.get(f, f) for f in r.fired],
                        "panel": f"/panels/{day}/{r.map}" if r.map else None,
                    }
                )
            self.problems.extendleft(f"{now:%H:%M:%S} {line}" for line in problems)
            for old in sorted(self.hours)[:-24]:
                del self.hours[old]

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "watching": self.watching,
                "models": [
                    {
                        "class": m.class_,
                        "objective": m.objective,
                        "threshold": round(m.threshold, 3),
                        "origin": m.threshold_origin,
                    }
                    for m in self.models
                ],
                "latest": list(self.latest),
                "hours": [{"hour": h, "scans": c[0], "anomalous": c[1]} for h, c in sorted(self.hours.items())],
                "problems": list(self.problems),
            }


def live_app(state: LiveState):
    """The Starlette app: / (the page), /state (JSON), /panels/DAY/maps/NAME.jpg."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    async def page(request):
        return HTMLResponse(PAGE)

    async def current(request):
        return JSONResponse(state.snapshot())

    async def panel(request):
        day, name = request.path_params["day"], request.path_params["name"]
        path = (state.out / day / "maps" / name).resolve()
        if path.parent != (state.out / day / "maps").resolve() or not path.is_file():
            return Response("no such panel", status_code=404)
        return FileResponse(path, media_type="image/jpeg")

    return Starlette(
        routes=[
            Route("/", page),
            Route("/state", current),
            Route("/panels/{day:str}/maps/{name:str}", panel),
        ]
    )


class PortInUse(OSError):
    """The --serve address cannot be listened on; the message says which and why."""


def serve(state: LiveState, host: str, port: int) -> threading.Thread:
    """Serve the page from a daemon thread; PortInUse (one line) before anything starts when the
    address is taken or not this machine's."""
    import uvicorn

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        raise PortInUse(f"--serve {host}:{port}: cannot listen there ({e.strerror or e})") from None
    config = uvicorn.Config(live_app(state), host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="live-page")
    thread.start()
    return thread


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>anomaly-gan watch</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em}
.small{color:#666;font-size:.9em}
.counts{display:flex;gap:2em;margin:.8em 0}
.count b{font-size:1.8em;display:block}
.bad{color:#b00020}.good{color:#1b7f3b}
#hours{display:flex;align-items:flex-end;gap:3px;height:80px;margin:.5em 0 1em;border-bottom:1px solid #ccc}
#hours div{width:18px;background:#9ab;position:relative}
#hours div span{position:absolute;bottom:0;left:0;right:0;background:#b00020}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{border-bottom:1px solid #e3e3e3;padding:4px 6px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin-top:4px}
#problems{color:#8a5300}
</style></head><body>
<h1>anomaly-gan watch</h1>
<div class="small" id="watching"></div>
<div class="small" id="models"></div>
<div class="counts">
 <div class="count"><b id="scans">0</b>scans in the last hour</div>
 <div class="count bad"><b id="anomalous">0</b>anomalous in the last hour</div>
 <div class="count"><b id="total">0</b>scans in the last 24 hours</div>
</div>
<div class="small">Scans per hour (red: anomalous), last 24 hours</div>
<div id="hours"></div>
<div id="problems"></div>
<table><thead><tr><th>time</th><th>scan</th><th>class</th><th>score</th><th>threshold</th><th>verdict</th></tr></thead>
<tbody id="latest"></tbody></table>
<script>
function esc(s){return String(s).replace(/[&<>"]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]))}
async function refresh(){
 let s;
 try{s=await (await fetch("state",{cache:"no-store"})).json()}catch(e){
  document.getElementById("watching").textContent="the watch process does not answer";return}
 const put=(id,text)=>{document.getElementById(id).textContent=text};
 put("watching","watching "+s.watching);
 put("models",s.models.map(m=>m.class+" ("+m.objective+"): threshold "+m.threshold+", "+m.origin).join("; "));
 const last=s.hours.length?s.hours[s.hours.length-1]:{scans:0,anomalous:0};
 put("scans",last.scans);
 put("anomalous",last.anomalous);
 put("total",s.hours.reduce((a,h)=>a+h.scans,0));
 const top=Math.max(1,...s.hours.map(h=>h.scans));
 document.getElementById("hours").innerHTML=s.hours.map(h=>
  '<div title="'+esc(h.hour)+': '+h.scans+' scans, '+h.anomalous+' anomalous" style="height:'+
  (80*h.scans/top)+'px"><span style="height:'+(80*h.anomalous/top)+'px"></span></div>').join("");
 document.getElementById("problems").innerHTML=s.problems.map(p=>"<div>"+esc(p)+"</div>").join("");
 document.getElementById("latest").innerHTML=s.latest.map(r=>
  "<tr><td>"+esc(r.time)+"</td><td>"+esc(r.scan)+
  (r.anomalous&&r.panel?'<img loading="lazy" src="'+esc(r.panel.slice(1))+'" alt="panel">':"")+
  "</td><td>"+esc(r.class)+'</td><td class="num">'+r.score.toFixed(3)+'</td><td class="num">'+
  r.threshold.toFixed(3)+'</td><td class="'+(r.anomalous?"bad":"good")+'">'+esc(r.verdict)+"</td></tr>").join("");
}
refresh();setInterval(refresh,1000);
</script></body></html>
"""
