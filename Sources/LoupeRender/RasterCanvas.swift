// A small RGB drawing surface: filled rectangles and bitmap-font text, enough for heatmaps and legends.

import Foundation

/// An RGB raster, white to begin with.
struct RasterCanvas {
    let width: Int, height: Int
    /// `[height, width, 3]`.
    private(set) var pixels: [UInt8]

    init(width: Int, height: Int, background: RGB = .white) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fill(x: 0, y: 0, width: width, height: height, background)
    }

    /// Fills a rectangle, clipped to the canvas.
    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: RGB) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            var i = (yy * width + x0) * 3
            for _ in x0..<x1 {
                pixels[i] = color.r; pixels[i + 1] = color.g; pixels[i + 2] = color.b
                i += 3
            }
        }
    }

    /// Draws `text` (folded to the font's characters) with its top-left corner at `x`, `y`, each font
    /// pixel `scale` pixels wide. `vertical` text reads upwards, its baseline on the right, starting at the bottom.
    mutating func text(_ text: String, x: Int, y: Int, scale: Int = 1, color: RGB = .black, vertical: Bool = false) {
        for (i, ch) in BitmapFont.fold(text).enumerated() {
            let glyph = BitmapFont.glyph(ch)
            for (row, bits) in glyph.enumerated() {
                for (column, ink) in bits.enumerated() where ink {
                    let u = i * BitmapFont.advance + column, v = row   // position along and across the text
                    if vertical {
                        fill(x: x + v * scale, y: y - (u + 1) * scale, width: scale, height: scale, color)
                    } else {
                        fill(x: x + u * scale, y: y + v * scale, width: scale, height: scale, color)
                    }
                }
            }
        }
    }

    func image() throws -> PNGImage { try PNGImage(width: width, height: height, colorType: .rgb, pixels: pixels) }
}
