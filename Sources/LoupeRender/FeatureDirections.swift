// A picture of directions in a plane: each vector drawn as a line from the origin, labelled at its tip —
// the columns of a toy model's W in two hidden dimensions (five features at the corners of a pentagon).

import Foundation

public struct FeatureDirections: Sendable {
    public let vectors: [[Float]]
    public let labels: [String]
    public let title: String

    /// `vectors` are 2-D; others are drawn by their first two coordinates.
    public init(vectors: [[Float]], labels: [String], title: String) {
        self.vectors = vectors.map { v in [v.first ?? 0, v.count > 1 ? v[1] : 0] }
        self.labels = labels
        self.title = title
    }

    static let size = 360, margin = 40
    /// The longest vector reaches this fraction of the half-width.
    var scale: Float {
        let longest = vectors.map { ($0[0] * $0[0] + $0[1] * $0[1]).squareRoot() }.max() ?? 1
        return Float(Self.size / 2 - Self.margin) / max(longest, 1e-6)
    }

    func point(_ v: [Float]) -> (Int, Int) {
        let c = Self.size / 2
        return (c + Int((v[0] * scale).rounded()), c + 20 - Int((v[1] * scale).rounded()))
    }

    public var svg: String {
        let s = Self.size, c = s / 2
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(s)" height="\(s + 20)" font-family="Helvetica, Arial, sans-serif" font-size="11">
        <text x="4" y="14" font-size="12" font-weight="bold">\(xmlEscape(title))</text>
        <line x1="\(Self.margin / 2)" y1="\(c + 20)" x2="\(s - Self.margin / 2)" y2="\(c + 20)" stroke="#dddddd"/>
        <line x1="\(c)" y1="\(Self.margin / 2 + 20)" x2="\(c)" y2="\(s - Self.margin / 2 + 20)" stroke="#dddddd"/>

        """
        for (v, label) in zip(vectors, labels) {
            let (x, y) = point(v)
            let norm = (v[0] * v[0] + v[1] * v[1]).squareRoot()
            out += "<line x1=\"\(c)\" y1=\"\(c + 20)\" x2=\"\(x)\" y2=\"\(y)\" stroke=\"#2166ac\" stroke-width=\"2\"/>"
                + "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"3\" fill=\"#2166ac\"><title>\(xmlEscape(label)): ‖W‖ = \(String(format: "%.3f", norm))</title></circle>"
                + "<text x=\"\(x + (x >= c ? 5 : -5))\" y=\"\(y + (y >= c + 20 ? 12 : -4))\" text-anchor=\"\(x >= c ? "start" : "end")\">\(xmlEscape(label))</text>\n"
        }
        return out + "</svg>\n"
    }

    public func png() throws -> PNGImage {
        let s = Self.size, c = s / 2
        var canvas = RasterCanvas(width: s, height: s + 20)
        canvas.text(title, x: 4, y: 4)
        canvas.line(from: (Self.margin / 2, c + 20), to: (s - Self.margin / 2, c + 20), RGB(221, 221, 221))
        canvas.line(from: (c, Self.margin / 2 + 20), to: (c, s - Self.margin / 2 + 20), RGB(221, 221, 221))
        for (v, label) in zip(vectors, labels) {
            let (x, y) = point(v)
            canvas.line(from: (c, c + 20), to: (x, y), .blue, thickness: 2)
            canvas.fill(x: x - 3, y: y - 3, width: 7, height: 7, .blue)
            canvas.text(label, x: x + (x >= c ? 6 : -6 - 6 * label.count), y: y + (y >= c + 20 ? 6 : -12))
        }
        return try canvas.image()
    }
}

extension RasterCanvas {
    /// A straight line (Bresenham), `thickness` pixels wide.
    mutating func line(from a: (Int, Int), to b: (Int, Int), _ color: RGB, thickness: Int = 1) {
        var (x, y) = a
        let dx = abs(b.0 - x), dy = -abs(b.1 - y)
        let sx = x < b.0 ? 1 : -1, sy = y < b.1 ? 1 : -1
        var err = dx + dy
        let half = thickness / 2
        while true {
            fill(x: x - half, y: y - half, width: thickness, height: thickness, color)
            if x == b.0 && y == b.1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }
}
