// Self-contained HTML pages: every view is a section of a `Report`, which writes one file with its CSS,
// its script and its data inline. Nothing is fetched: no external URLs, fonts, scripts or images (images
// are `data:` URLs), so a report can be mailed, archived, or opened offline.

import Foundation

/// Something that can be shown as a section of an HTML page.
public protocol HTMLView {
    /// The section's heading (plain text; escaped when written).
    var title: String { get }
    /// The section's body: HTML with every user string escaped. `id` is unique in the page; views use it
    /// to name their elements and embedded data.
    func htmlBody(id: String) -> String
}

/// An HTML page of sections with a table of contents.
public struct Report {
    public var title: String
    /// Lines under the title, e.g. `("model", "smollm2-135m")`.
    public var metadata: [(String, String)]
    public private(set) var sections: [(id: String, view: any HTMLView)] = []

    public init(title: String, metadata: [(String, String)] = []) {
        self.title = title; self.metadata = metadata
    }

    /// Appends a section; its anchor is made from its title (and made unique).
    public mutating func add(_ view: any HTMLView) {
        var slug = String(view.title.lowercased().unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "-" })
        while slug.contains("--") { slug = slug.replacingOccurrences(of: "--", with: "-") }
        slug = slug.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        if slug.isEmpty { slug = "section" }
        var id = slug, n = 2
        while sections.contains(where: { $0.id == id }) { id = "\(slug)-\(n)"; n += 1 }
        sections.append((id, view))
    }

    /// The page.
    public var html: String {
        var out = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(xmlEscape(title))</title>
        <style>\(HTMLAssets.css)</style>
        </head>
        <body>
        <header><h1>\(xmlEscape(title))</h1>

        """
        if !metadata.isEmpty {
            out += "<dl class=\"meta\">"
            for (k, v) in metadata { out += "<dt>\(xmlEscape(k))</dt><dd>\(xmlEscape(v))</dd>" }
            out += "</dl>\n"
        }
        out += "</header>\n"
        if sections.count > 1 {
            out += "<nav class=\"toc\"><h2>Contents</h2><ol>\n"
            for (id, view) in sections { out += "<li><a href=\"#\(id)\">\(xmlEscape(view.title))</a></li>\n" }
            out += "</ol></nav>\n"
        }
        for (id, view) in sections {
            out += "<section id=\"\(id)\">\n<h2>\(xmlEscape(view.title))</h2>\n\(view.htmlBody(id: id))\n</section>\n"
        }
        out += "<script>\(HTMLAssets.script)</script>\n</body>\n</html>\n"
        return out
    }

    /// Writes the page to `path`.
    public func write(to path: String) throws { try writeFile(Data(html.utf8), to: path) }

    /// A page holding one view.
    public static func page(_ view: any HTMLView, metadata: [(String, String)] = []) -> Report {
        var report = Report(title: view.title, metadata: metadata)
        report.add(view)
        return report
    }
}

/// Text for a double-quoted attribute that the page's tooltip shows: escaped, newlines kept.
func tipAttribute(_ s: String) -> String {
    s.split(separator: "\n", omittingEmptySubsequences: false).map { xmlEscape(String($0)) }.joined(separator: "&#10;")
}

/// Data for a view's script: `<script type="application/json" id="…">`.
func jsonScript(id: String, _ value: JSONText) -> String {
    "<script type=\"application/json\" id=\"\(id)\">\(value.text)</script>"
}

/// A horizontal colour bar for a scale, with its ends and middle written under it.
func legendHTML(_ scale: ColorScale, caption: String = "") -> String {
    let stops = scale.ticks(11).map { scale.color($0).hex }.joined(separator: ",")
    let ticks = scale.ticks(3).map { "<span>\(xmlEscape(formatValue($0)))</span>" }.joined()
    return "<div class=\"legend\"><div class=\"bar\" style=\"background:linear-gradient(to right,\(stops))\"></div>"
        + "<div class=\"ticks\">\(ticks)</div>\(caption.isEmpty ? "" : "<div class=\"caption\">\(xmlEscape(caption))</div>")</div>"
}

/// Black or white text, whichever reads better on `background`.
func textColor(on background: RGB) -> String { background.luminance < 0.55 ? "#fff" : "#000" }

enum HTMLAssets {
    static let css = """
    body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
    h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
    dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0;color:#555}dl.meta dt{font-weight:600}dl.meta dd{margin:0;white-space:pre-wrap}
    nav.toc ol{margin:4px 0;padding-left:22px}nav.toc h2{border:0}
    .note{color:#666;font-size:13px;margin:4px 0 8px}
    .scroll{overflow-x:auto;max-width:100%}
    table.heat{border-collapse:collapse;font-size:12px}table.heat td,table.heat th{padding:0;text-align:center}
    table.heat td.c{min-width:26px;height:22px;border:1px solid #fff;font-size:10px}
    table.heat th{font-weight:normal;white-space:pre;padding:0 4px}table.heat thead th{vertical-align:bottom;height:auto}
    table.heat thead th span{writing-mode:vertical-rl;transform:rotate(180deg);display:inline-block;max-height:160px;overflow:hidden}
    table.heat th.r{text-align:right}
    table.lens td.c{min-width:64px;max-width:96px;overflow:hidden;white-space:pre;font-size:11px;padding:2px 3px}
    table.plain{border-collapse:collapse;font-size:13px}table.plain td,table.plain th{padding:2px 12px 2px 0;border-bottom:1px solid #eee;text-align:left;white-space:pre}
    .legend{margin:8px 0;width:260px;font-size:11px}.legend .bar{height:12px;border:1px solid #ccc}
    .legend .ticks{display:flex;justify-content:space-between}.legend .caption{color:#666}
    .bars{display:grid;grid-template-columns:max-content 1fr max-content;gap:2px 8px;align-items:center;font-size:12px;max-width:900px}
    .bars .track{position:relative;height:14px;background:#f4f4f4}.bars .fill{position:absolute;top:0;height:14px}
    .bars .zero{position:absolute;top:-2px;bottom:-2px;width:1px;background:#888}.bars .v{font-variant-numeric:tabular-nums;text-align:right}
    .text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;line-height:1.9;white-space:pre-wrap;word-break:break-word}
    .tok{border-radius:2px;padding:1px 0;cursor:default;white-space:pre}.tok.focus{outline:2px solid #222}
    .example{margin:2px 0}.example .act{display:inline-block;width:64px;color:#555;font-family:ui-monospace,Menlo,Consolas,monospace}
    .neuron h3{font-size:15px;margin:16px 0 4px}.tokens-list{font-size:12px;color:#444}
    .attn .strip{margin:4px 0}.attn .strip b{display:inline-block;width:110px;font-weight:600;font-size:12px}
    .attn .grid{display:grid;gap:4px;margin-top:10px;align-items:center}.attn canvas{border:1px solid #ddd;cursor:pointer;image-rendering:pixelated}
    .attn canvas.sel{border:2px solid #222}.attn .lab{font-size:11px;color:#555;text-align:right;padding-right:4px}
    svg.curves text{font-size:11px}
    .tip{position:absolute;display:none;background:#222;color:#fff;font-size:12px;padding:4px 7px;border-radius:3px;white-space:pre;pointer-events:none;z-index:10;font-family:ui-monospace,Menlo,Consolas,monospace}
    """

    static let script = """
    (function(){"use strict";
    var tip=document.createElement("div");tip.className="tip";document.body.appendChild(tip);
    function place(e){tip.style.left=(e.pageX+14)+"px";tip.style.top=(e.pageY+14)+"px";}
    function show(text,e){tip.textContent=text;tip.style.display="block";place(e);}
    function hide(){tip.style.display="none";}
    document.addEventListener("mouseover",function(e){var t=e.target.closest?e.target.closest("[data-tip]"):null;if(t){show(t.getAttribute("data-tip"),e);}else if(!e.target.closest||!e.target.closest("canvas")){hide();}});
    document.addEventListener("mousemove",function(e){if(tip.style.display==="block"){place(e);}});
    function mix(a,b,t){t=Math.max(0,Math.min(1,t));return"rgb("+[0,1,2].map(function(i){return Math.round(a[i]+(b[i]-a[i])*t);}).join(",")+")";}
    var W=[255,255,255],BLUE=[33,102,172],ORANGE=[230,97,1];
    function ink(t){return t>0.55?"#fff":"#000";}
    function q(s){return JSON.stringify(s);}
    document.querySelectorAll(".attn").forEach(function(root){
      var d=JSON.parse(document.getElementById(root.getAttribute("data-src")).textContent);
      var T=d.tokens.length,H=d.heads,n=d.patterns.length,sel=0,focus=T-1;
      function w(h,i,j){return d.patterns[h][i*T+j]/d.scale;}
      function name(h){return d.names[h];}
      function spans(row){return d.tokens.map(function(t,i){var s=document.createElement("span");s.className="tok";s.textContent=t;s.dataset.i=i;row.appendChild(s);return s;});}
      var toRow=root.querySelector(".to"),fromRow=root.querySelector(".from"),cur=root.querySelector(".current");
      var to=spans(toRow),from=spans(fromRow);
      var px=Math.max(2,Math.floor(96/T)),grid=root.querySelector(".grid"),canvases=[],bases=[];
      grid.style.gridTemplateColumns="max-content repeat("+H+",max-content)";
      for(var h=0;h<n;h++){
        if(h%H===0){var lab=document.createElement("div");lab.className="lab";lab.textContent=d.rowLabels[h/H|0];grid.appendChild(lab);}
        var c=document.createElement("canvas");c.width=c.height=T*px;c.dataset.h=h;grid.appendChild(c);canvases.push(c);
        var b=document.createElement("canvas");b.width=b.height=T*px;var bx=b.getContext("2d");
        for(var i=0;i<T;i++){for(var j=0;j<T;j++){bx.fillStyle=mix(W,BLUE,w(h,i,j));bx.fillRect(j*px,i*px,px,px);}}
        bases.push(b);
        c.addEventListener("mousemove",function(e){var h=+this.dataset.h,r=this.getBoundingClientRect();var j=Math.floor((e.clientX-r.left)/px),i=Math.floor((e.clientY-r.top)/px);
          if(i>=0&&i<T&&j>=0&&j<T){show(name(h)+"\\nquery "+i+" "+q(d.tokens[i])+"\\n→ key "+j+" "+q(d.tokens[j])+"\\n"+w(h,i,j).toFixed(3)+"\\n(click to select)",e);}});
        c.addEventListener("mouseleave",hide);
        c.addEventListener("click",function(){sel=+this.dataset.h;paint();});
      }
      function paint(){
        cur.textContent=name(sel)+", token "+focus+" "+q(d.tokens[focus]);
        for(var j=0;j<T;j++){var a=w(sel,focus,j),b=w(sel,j,focus);
          to[j].style.background=mix(W,BLUE,a);to[j].style.color=ink(a);to[j].dataset.tip=q(d.tokens[focus])+" → "+q(d.tokens[j])+": "+a.toFixed(3);
          from[j].style.background=mix(W,ORANGE,b);from[j].style.color=ink(b);from[j].dataset.tip=q(d.tokens[j])+" → "+q(d.tokens[focus])+": "+b.toFixed(3);
          to[j].classList.toggle("focus",j===focus);from[j].classList.toggle("focus",j===focus);}
        canvases.forEach(function(c,h){var x=c.getContext("2d");x.drawImage(bases[h],0,0);x.lineWidth=1;
          x.strokeStyle="rgb(33,102,172)";x.strokeRect(0.5,focus*px+0.5,T*px-1,px-1);
          x.strokeStyle="rgb(230,97,1)";x.strokeRect(focus*px+0.5,0.5,px-1,T*px-1);c.classList.toggle("sel",h===sel);});
      }
      [toRow,fromRow].forEach(function(row){row.addEventListener("mouseover",function(e){if(e.target.dataset&&e.target.dataset.i!==undefined){focus=+e.target.dataset.i;paint();}});});
      paint();
    });
    })();
    """
}
