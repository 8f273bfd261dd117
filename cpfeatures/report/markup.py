"""Small HTML pieces shared by the report's sections: escaping, inline images, tables, style and script.

Everything is inline: the report is one file that opens offline. Text is
escaped with :func:`html.escape`; images are PNG ``data:`` URIs or inline SVG;
the style and the small vanilla-JS script (:data:`SCRIPT`) are written into
the page itself.
"""

from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

from . import figures as rf

__all__ = ["esc", "data_uri", "img_tag", "figure_tag", "note", "table_html", "kv_html", "map_html", "chooser_html",
           "choice_html", "CSS", "SCRIPT", "MAX_TABLE_ROWS"]

#: Rows of a table written into the report (the rest is counted, not shown).
MAX_TABLE_ROWS = 1000

CSS = """
:root{--ink:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;--accent:#0b5cad}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  color:var(--ink);background:var(--bg)}
header{background:#24292f;color:#fff;padding:14px 28px}
header h1{margin:0 0 6px;font-size:20px;font-weight:600}
header nav a{color:#c9d1d9;margin-right:16px;text-decoration:none;font-size:13px}
header nav a:hover{color:#fff;text-decoration:underline}
main{max-width:1240px;margin:0 auto;padding:4px 28px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:6px 22px 18px;margin-top:18px}
h2{font-size:18px;border-bottom:1px solid var(--line);padding-bottom:6px}
h3{font-size:15px;margin:18px 0 6px}
p.note{color:var(--muted);margin:6px 0}
p.warn{color:#9a3412;background:#fff7ed;border:1px solid #fed7aa;border-radius:6px;padding:6px 10px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #eaeef2;padding:3px 10px 3px 6px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv th{background:none;position:static;color:var(--muted);font-weight:500;white-space:nowrap}
div.scroll{max-height:380px;overflow:auto;border:1px solid #eaeef2;border-radius:4px;display:inline-block;
  max-width:100%}
pre{background:var(--bg);border:1px solid #eaeef2;border-radius:4px;padding:8px 10px;font-size:12px;
  max-height:420px;overflow:auto}
img.fig{max-width:100%;height:auto;display:block;margin:8px 0}
.figs{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:flex-start}
.figs img.fig{max-width:min(100%,600px)}
.sites{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:14px}
details.site{border:1px solid #eaeef2;border-radius:6px;padding:6px;background:#fff}
details.site[open]{grid-column:1/-1}
details.site summary{list-style:none;cursor:zoom-in}
details.site summary::-webkit-details-marker{display:none}
details.site[open] summary{cursor:zoom-out}
details.site summary img{width:100%;height:auto;display:block;image-rendering:auto}
details.site[open] summary img{display:none}
details.site .caption{font-size:12px;color:var(--muted);margin-top:4px}
details.site .full{overflow:auto;max-height:90vh;margin-top:8px}
details.site .full img{max-width:none;display:block}
details.fold summary{cursor:pointer;color:var(--accent);margin:6px 0}
.legend span{display:inline-block;width:10px;height:10px;border:1px solid #999;margin:0 4px 0 10px;
  vertical-align:middle}
footer{color:var(--muted);font-size:12px;text-align:center;margin:24px 0}
.map{display:inline-block;vertical-align:top;margin:6px 0 10px 0;max-width:100%}
.map .cap{font-size:13px;font-weight:600;margin:2px 0;max-width:640px}
.map .tools{font-size:12px;color:var(--muted);margin:2px 0}
.map .tools button,.chooser button{font:inherit;font-size:12px;border:1px solid var(--line);background:#fff;
  border-radius:4px;padding:1px 8px;margin:0 3px 3px 0;cursor:pointer}
.chooser button.on{background:var(--accent);color:#fff;border-color:var(--accent)}
.map .view{overflow:hidden;border:1px solid #eaeef2;border-radius:4px;max-width:100%;touch-action:none}
svg.plate{display:block;max-width:100%;height:auto;font-family:inherit;fill:#333;user-select:none}
svg.plate rect.w{stroke:none}
svg.plate rect.w:hover{stroke:#000;stroke-width:1.5}
.js .choice:not(.on){display:none}
#tip{position:fixed;z-index:10;pointer-events:none;background:#24292f;color:#fff;font-size:12px;padding:3px 7px;
  border-radius:4px;white-space:pre;display:none}
.chooser{margin:6px 0}
.chooser select{font:inherit;font-size:13px;padding:1px 4px}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}
.thumbs figure{margin:0;font-size:12px;color:var(--muted)}
.thumbs img{display:block;width:180px;height:auto;border:1px solid #eaeef2}
.well-card{border:1px solid #eaeef2;border-radius:6px;padding:4px 12px 10px;margin:8px 0}
.flag{color:#9a3412}
"""


# -- helpers ---------------------------------------------------------------------------

def esc(value) -> str:
    """Text escaped for HTML content and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI (the report has no file beside it to link to)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img_tag(png: bytes, alt: str, name: str, cls: str = "fig") -> str:
    """An ``<img>`` with the PNG inline; ``data-figure`` names it (tests and scripts find figures by it)."""
    return f'<img class="{cls}" data-figure="{esc(name)}" alt="{esc(alt)}" src="{data_uri(png)}">'


def figure_tag(fig, alt: str, name: str) -> str:
    """A matplotlib figure as an inline ``<img>`` (see :func:`img_tag`)."""
    return img_tag(rf.png_bytes(fig), alt, name)


def note(text: str, cls: str = "note") -> str:
    """A paragraph of escaped text; ``cls="warn"`` for one that asks for attention."""
    return f'<p class="{cls}">{esc(text)}</p>'


def _format(value) -> tuple[str, bool]:
    """(text, is_number) of a table cell."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "", False
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, np.integer)):
        return f"{int(value)}", True
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and abs(v) < 1e15:
            return f"{v:.0f}", True
        return (f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e5 else f"{v:.4f}".rstrip("0").rstrip(".")), True
    if isinstance(value, (frozenset, set, list, tuple)):
        return ", ".join(sorted(map(str, value))), False
    return str(value), False


def table_html(frame: pd.DataFrame, max_rows: int = MAX_TABLE_ROWS, scroll: bool = True, links: str | None = None
               ) -> str:
    """A DataFrame as an escaped HTML table (first ``max_rows`` rows).

    ``links`` names a well column whose cells link to the well's card (``#well=D08``).
    """
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    link_at = list(frame.columns).index(links) if links in frame.columns else -1
    for values in frame.head(max_rows).itertuples(index=False, name=None):
        cells = []
        for i, v in enumerate(values):
            text, num = _format(v)
            if i == link_at and text:
                cells.append(f'<td><a href="#well={esc(text)}">{esc(text)}</a></td>')
                continue
            cells.append(f'<td class="num">{esc(text)}</td>' if num else f"<td>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    out = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    if scroll:
        out = f'<div class="scroll">{out}</div>'
    if len(frame) > max_rows:
        out += note(f"{len(frame) - max_rows} more rows not shown ({len(frame)} in all).")
    return out


def kv_html(pairs) -> str:
    """Key-value rows as a two-column table."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_format(v)[0] if not isinstance(v, str) else v)}</td></tr>"
                   for k, v in pairs if v is not None)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def map_html(svg: str, caption: str) -> str:
    """A plate map with its caption and zoom buttons (wheel to zoom, drag to pan, with the page's script)."""
    tools = ('<div class="tools">zoom <button type="button" data-zoom="1.5">+</button>'
             '<button type="button" data-zoom="0.667">&#8722;</button>'
             '<button type="button" data-zoom="reset">reset</button> (or the mouse wheel; drag to pan)</div>')
    return f'<div class="map"><div class="cap">{esc(caption)}</div>{tools}<div class="view">{svg}</div></div>'


def chooser_html(group: str, keys: list[str], labels: list[str] | None = None, select: bool = False,
                 prompt: str = "") -> str:
    """Buttons (or a drop-down) that show one panel of ``group`` (``<div class="choice" data-group data-key>``)."""
    labels = list(keys) if labels is None else labels
    if select:
        options = "".join(f'<option value="{esc(k)}">{esc(t)}</option>' for k, t in zip(keys, labels))
        inner = f'<label>{esc(prompt)} <select data-key="{esc(keys[0]) if keys else ""}">{options}</select></label>'
    else:
        inner = esc(prompt) + " " + "".join(f'<button type="button" data-key="{esc(k)}">{esc(t)}</button>'
                                           for k, t in zip(keys, labels))
    return f'<div class="chooser" data-group="{esc(group)}">{inner}</div>'


def choice_html(group: str, key: str, content: str, cls: str = "", element_id: str | None = None) -> str:
    """One panel of a chooser's group."""
    ident = f' id="{esc(element_id)}"' if element_id else ""
    return f'<div class="choice {cls}"{ident} data-group="{esc(group)}" data-key="{esc(key)}">{content}</div>'


#: The page's script (vanilla JS, inline, no request): instant well tooltips, zoom and pan on plate maps
#: (wheel or buttons; drag to pan), choosers that show one panel of a group (channels, wells), and
#: ``#group=key`` links (e.g. ``#well=D08``) that select a panel. Without it every panel shows and
#: the browser's own tooltips remain.
SCRIPT = r"""
(function(){
"use strict";
var doc=document, root=doc.documentElement; root.classList.add("js");
var tip=doc.createElement("div"); tip.id="tip"; doc.body.appendChild(tip);
doc.querySelectorAll("svg.plate rect.w").forEach(function(r){
  var t=r.querySelector("title"); if(t){r.setAttribute("data-tip",t.textContent); t.remove();}
});
doc.addEventListener("mouseover",function(e){
  var r=e.target.closest&&e.target.closest("[data-tip]"); if(!r){tip.style.display="none";return;}
  tip.textContent=r.getAttribute("data-tip"); tip.style.display="block";
});
doc.addEventListener("mousemove",function(e){
  if(tip.style.display==="block"){tip.style.left=(e.clientX+14)+"px"; tip.style.top=(e.clientY+12)+"px";}
});
function box(svg){return svg.getAttribute("viewBox").split(" ").map(Number);}
function setBox(svg,b){svg.setAttribute("viewBox",b.map(function(v){return v.toFixed(2);}).join(" "));
  var m=svg.closest(".map"); if(m){m.setAttribute("data-zoom",(svg._full[2]/b[2]).toFixed(2));}}
function zoom(svg,f,cx,cy){
  var b=box(svg), full=svg._full, w=Math.min(full[2],Math.max(full[2]/16,b[2]/f)), h=w*full[3]/full[2];
  if(cx===undefined){cx=b[0]+b[2]/2; cy=b[1]+b[3]/2;}
  var x=cx-(cx-b[0])*w/b[2], y=cy-(cy-b[1])*h/b[3];
  x=Math.max(0,Math.min(full[2]-w,x)); y=Math.max(0,Math.min(full[3]-h,y)); setBox(svg,[x,y,w,h]);
}
function point(svg,e){var r=svg.getBoundingClientRect(), b=box(svg);
  return [b[0]+(e.clientX-r.left)/r.width*b[2], b[1]+(e.clientY-r.top)/r.height*b[3]];}
doc.querySelectorAll(".map").forEach(function(m){
  var svg=m.querySelector("svg.plate"); if(!svg)return; svg._full=box(svg);
  m.querySelectorAll("button[data-zoom]").forEach(function(btn){btn.addEventListener("click",function(){
    var z=btn.getAttribute("data-zoom"); if(z==="reset"){setBox(svg,svg._full.slice());} else {zoom(svg,Number(z));}
  });});
  svg.addEventListener("wheel",function(e){e.preventDefault(); var p=point(svg,e);
    zoom(svg,e.deltaY<0?1.25:0.8,p[0],p[1]);},{passive:false});
  var drag=null;
  svg.addEventListener("pointerdown",function(e){drag=[e.clientX,e.clientY,box(svg)];});
  window.addEventListener("pointerup",function(){drag=null;});
  svg.addEventListener("pointermove",function(e){ if(!drag)return; var r=svg.getBoundingClientRect(), b=drag[2],
    full=svg._full, x=b[0]-(e.clientX-drag[0])/r.width*b[2], y=b[1]-(e.clientY-drag[1])/r.height*b[3];
    setBox(svg,[Math.max(0,Math.min(full[2]-b[2],x)),Math.max(0,Math.min(full[3]-b[3],y)),b[2],b[3]]);});
});
function choose(group,key){
  var found=false;
  doc.querySelectorAll('.choice[data-group="'+group+'"]').forEach(function(p){
    var on=p.getAttribute("data-key")===key; p.classList.toggle("on",on); found=found||on;});
  doc.querySelectorAll('.chooser[data-group="'+group+'"]').forEach(function(c){
    c.querySelectorAll("button[data-key]").forEach(function(b){
      b.classList.toggle("on",b.getAttribute("data-key")===key);});
    var s=c.querySelector("select"); if(s&&found){s.value=key;}
  });
  return found;
}
doc.querySelectorAll(".chooser").forEach(function(c){
  var group=c.getAttribute("data-group"), first=c.querySelector("[data-key]"), s=c.querySelector("select");
  c.querySelectorAll("button[data-key]").forEach(function(b){
    b.addEventListener("click",function(){choose(group,b.getAttribute("data-key"));});});
  if(s){s.addEventListener("change",function(){choose(group,s.value);});}
  choose(group,s?s.value:(first&&first.getAttribute("data-key")));
});
function fromHash(){
  var m=/^#([a-z]+)=(.+)$/.exec(decodeURIComponent(location.hash)); if(!m)return;
  if(choose(m[1],m[2])){var c=doc.querySelector('.chooser[data-group="'+m[1]+'"]'); if(c){c.scrollIntoView();}}
}
window.addEventListener("hashchange",fromHash); fromHash();
root.setAttribute("data-report-ready","1");
})();
"""
