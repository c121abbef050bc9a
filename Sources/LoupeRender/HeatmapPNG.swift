// Heatmaps as PNG images: the same cells, colours, labels and legend as the SVG, drawn into pixels with
// the built-in bitmap font (labels folded to ASCII, long ones cut at 24 characters).

import Foundation

/// Where a heatmap's parts go in its raster image.
public struct RasterHeatmapLayout: Sendable {
    /// Side of one cell, in pixels: 24 for small grids, down to 3 for large ones (the image stays near 1000 px).
    public let cell: Int
    /// Font pixel size of labels (1 or 2) and which labels are drawn (every `labelStride`-th).
    public let fontScale: Int, labelStride: Int
    /// Top-left corner of the grid.
    public let gridX: Int, gridY: Int
    /// The legend bar.
    public let legendX: Int, legendY: Int, legendWidth: Int, legendHeight: Int
    public let width: Int, height: Int

    static let maxLabel = 24

    init(_ map: Heatmap) {
        let longest = max(map.rows, map.columns)
        cell = max(3, min(24, 960 / longest))
        fontScale = cell >= 16 ? 2 : 1
        labelStride = max(1, Int((Double(8 * fontScale) / Double(cell)).rounded(.up)))
        let margin = 8, charWidth = BitmapFont.advance * fontScale
        let rowChars = min(Self.maxLabel, map.rowLabels.map { $0.count }.max() ?? 0)
        let columnChars = min(Self.maxLabel, map.columnLabels.map { $0.count }.max() ?? 0)
        let titleHeight = BitmapFont.glyphHeight * 2 + 10
        gridX = margin + rowChars * charWidth + 6
        gridY = margin + titleHeight + columnChars * charWidth + 6
        legendX = margin
        legendY = gridY + map.rows * cell + 12
        legendWidth = 240
        legendHeight = 14
        width = max(gridX + map.columns * cell, legendX + legendWidth + 30, margin + BitmapFont.width(map.title) * 2) + margin
        height = legendY + legendHeight + 6 + BitmapFont.glyphHeight * fontScale + margin
    }

    /// The pixel at the centre of a cell.
    public func cellCenter(row: Int, column: Int) -> (x: Int, y: Int) {
        (gridX + column * cell + cell / 2, gridY + row * cell + cell / 2)
    }
}

extension Heatmap {
    /// The layout of `pngImage()`.
    public var rasterLayout: RasterHeatmapLayout { RasterHeatmapLayout(self) }

    /// The heatmap as an RGB image: title, vertical column labels, row labels, cells, and a legend bar
    /// with its two ends and middle written under it.
    public func pngImage() throws -> PNGImage {
        let layout = rasterLayout
        var canvas = RasterCanvas(width: layout.width, height: layout.height)
        canvas.text(title, x: 8, y: 8, scale: 2)
        let f = layout.fontScale, charWidth = BitmapFont.advance * f
        func cut(_ s: String) -> String { s.count > RasterHeatmapLayout.maxLabel ? String(s.prefix(RasterHeatmapLayout.maxLabel - 1)) + "~" : s }
        for (c, label) in columnLabels.enumerated() where c % layout.labelStride == 0 {
            let x = layout.gridX + c * layout.cell + (layout.cell - BitmapFont.glyphHeight * f) / 2
            canvas.text(cut(label), x: x, y: layout.gridY - 4, scale: f, vertical: true)
        }
        for (r, label) in rowLabels.enumerated() where r % layout.labelStride == 0 {
            let text = cut(label)
            let x = layout.gridX - 6 - BitmapFont.fold(text).count * charWidth
            canvas.text(text, x: x, y: layout.gridY + r * layout.cell + (layout.cell - BitmapFont.glyphHeight * f) / 2, scale: f)
        }
        let gap = layout.cell >= 8 ? 1 : 0   // a white line between cells when they are big enough to see it
        for r in 0..<rows {
            for c in 0..<columns {
                canvas.fill(x: layout.gridX + c * layout.cell, y: layout.gridY + r * layout.cell,
                            width: layout.cell - gap, height: layout.cell - gap, colorScale.color(self[r, c]))
            }
        }
        for x in 0..<layout.legendWidth {
            let v = colorScale.lower + (colorScale.upper - colorScale.lower) * Float(x) / Float(layout.legendWidth - 1)
            canvas.fill(x: layout.legendX + x, y: layout.legendY, width: 1, height: layout.legendHeight, colorScale.color(v))
        }
        // The two ends and the middle under the bar; smaller, then without the middle, when they would overlap.
        let tickY = layout.legendY + layout.legendHeight + 4
        let ticks = colorScale.ticks(3).map(formatValue)
        let tickScale = (BitmapFont.width(ticks[0]) + BitmapFont.width(ticks[2])) * f + 12 <= layout.legendWidth ? f : 1
        let widths = ticks.map { BitmapFont.width($0) * tickScale }
        let middleX = layout.legendWidth / 2 - widths[1] / 2
        canvas.text(ticks[0], x: layout.legendX, y: tickY, scale: tickScale)
        canvas.text(ticks[2], x: layout.legendX + layout.legendWidth - widths[2], y: tickY, scale: tickScale)
        if widths[0] + 6 <= middleX, middleX + widths[1] + 6 <= layout.legendWidth - widths[2] {
            canvas.text(ticks[1], x: layout.legendX + middleX, y: tickY, scale: tickScale)
        }
        return try canvas.image()
    }

    /// The PNG file's bytes.
    public func png() throws -> Data { try pngImage().encoded() }

    /// Writes the heatmap as a PNG file to `path`.
    public func writePNG(to path: String) throws { try writeFile(try png(), to: path) }
}
