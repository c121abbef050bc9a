// Training curves: one or more series of (step, value) as an inline SVG line chart with axes, a legend,
// and each point's value on hover.

import Foundation

/// Series of (step, value) drawn on shared axes.
public struct TrainingCurves: HTMLView {
    public struct Series: Sendable {
        public let name: String
        public let points: [(step: Double, value: Double)]
        public init(name: String, points: [(step: Double, value: Double)]) { self.name = name; self.points = points }
    }

    public let title: String
    public let xLabel: String, yLabel: String
    public let series: [Series]
    /// A logarithmic value axis (all values must then be positive).
    public let logScale: Bool

    /// Colours of successive series (ColorBrewer Dark2).
    public static let palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]

    /// - Throws: `RenderError.shape` when there is no finite point, or a log scale meets a value ≤ 0.
    public init(title: String, xLabel: String = "step", yLabel: String = "loss", series: [Series], logScale: Bool = false) throws {
        guard series.contains(where: { $0.points.contains { $0.step.isFinite && $0.value.isFinite } }) else {
            throw RenderError.shape("training curves need at least one series with a finite (step, value) point; found \(series.count) series")
        }
        if logScale, let bad = series.first(where: { $0.points.contains { $0.value.isFinite && $0.value <= 0 } }) {
            throw RenderError.shape("a log scale needs positive values; series \(bad.name.quotedIfNeeded) has a value ≤ 0")
        }
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series; self.logScale = logScale
    }

    static let width = 720.0, height = 320.0, left = 64.0, right = 16.0, top = 12.0, bottom = 40.0

    /// The plotting range: `(x0, x1, y0, y1)` with `y` in log10 units on a log scale.
    var bounds: (Double, Double, Double, Double) {
        let pts = series.flatMap(\.points).filter { $0.step.isFinite && $0.value.isFinite }
        let ys = pts.map { logScale ? log10($0.value) : $0.value }
        var (x0, x1) = (pts.map(\.step).min() ?? 0, pts.map(\.step).max() ?? 1)
        var (y0, y1) = (ys.min() ?? 0, ys.max() ?? 1)
        if x1 == x0 { x0 -= 1; x1 += 1 }
        if y1 == y0 { y0 -= 1; y1 += 1 }
        let pad = (y1 - y0) * 0.05
        return (x0, x1, y0 - pad, y1 + pad)
    }

    /// SVG coordinates of a point.
    public func position(step: Double, value: Double) -> (x: Double, y: Double) {
        let (x0, x1, y0, y1) = bounds
        let y = logScale ? log10(value) : value
        return (Self.left + (step - x0) / (x1 - x0) * (Self.width - Self.left - Self.right),
                Self.top + (1 - (y - y0) / (y1 - y0)) * (Self.height - Self.top - Self.bottom))
    }

    public func htmlBody(id: String) -> String {
        let (x0, x1, y0, y1) = bounds
        let (w, h) = (Self.width, Self.height)
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var out = "<svg class=\"curves\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\">\n"
        out += "<rect x=\"\(f(Self.left))\" y=\"\(f(Self.top))\" width=\"\(f(w - Self.left - Self.right))\" height=\"\(f(h - Self.top - Self.bottom))\" fill=\"none\" stroke=\"#999\"/>\n"
        for i in 0...4 {
            let t = Double(i) / 4
            let xv = x0 + (x1 - x0) * t, yv = y0 + (y1 - y0) * t
            let px = Self.left + t * (w - Self.left - Self.right), py = h - Self.bottom - t * (h - Self.top - Self.bottom)
            out += "<line x1=\"\(f(px))\" y1=\"\(f(h - Self.bottom))\" x2=\"\(f(px))\" y2=\"\(f(h - Self.bottom + 4))\" stroke=\"#999\"/>"
            out += "<text x=\"\(f(px))\" y=\"\(f(h - Self.bottom + 16))\" text-anchor=\"middle\">\(xmlEscape(String(format: "%.4g", xv)))</text>\n"
            out += "<line x1=\"\(f(Self.left - 4))\" y1=\"\(f(py))\" x2=\"\(f(w - Self.right))\" y2=\"\(f(py))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(f(Self.left - 6))\" y=\"\(f(py + 4))\" text-anchor=\"end\">\(xmlEscape(String(format: "%.3g", logScale ? pow(10, yv) : yv)))</text>\n"
        }
        out += "<text x=\"\(f((Self.left + w - Self.right) / 2))\" y=\"\(f(h - 6))\" text-anchor=\"middle\">\(xmlEscape(xLabel))</text>\n"
        out += "<text x=\"12\" y=\"\(f((Self.top + h - Self.bottom) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(f((Self.top + h - Self.bottom) / 2)))\">\(xmlEscape(yLabel + (logScale ? " (log)" : "")))</text>\n"
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let pts = s.points.filter { $0.step.isFinite && $0.value.isFinite }
            let coords = pts.map { position(step: $0.step, value: $0.value) }
            out += "<polyline class=\"series\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(coords.map { "\(f($0.x)),\(f($0.y))" }.joined(separator: " "))\"/>\n"
            // Hover targets: every point for short series, an even sample of 300 for long ones.
            let stride = max(1, pts.count / 300)
            for j in Swift.stride(from: 0, to: pts.count, by: stride) {
                out += "<circle cx=\"\(f(coords[j].x))\" cy=\"\(f(coords[j].y))\" r=\"2.5\" fill=\"\(color)\" data-tip=\"\(tipAttribute("\(s.name)\nstep \(String(format: "%.6g", pts[j].step)): \(String(format: "%.5g", pts[j].value))"))\"/>"
            }
            out += "\n<rect x=\"\(f(Self.left + 10))\" y=\"\(f(Self.top + 8 + Double(i) * 16))\" width=\"12\" height=\"3\" fill=\"\(color)\"/>"
            out += "<text x=\"\(f(Self.left + 26))\" y=\"\(f(Self.top + 13 + Double(i) * 16))\">\(xmlEscape(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }
}

extension String {
    var quotedIfNeeded: String { "\"\(self)\"" }
}
