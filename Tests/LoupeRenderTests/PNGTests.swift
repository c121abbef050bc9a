import CZlib
import Foundation
import LoupeRender
import Testing

@Suite struct PNGTests {
    /// Reads the chunks with this test's own code and zlib, independently of `PNGImage.decode`.
    private func chunks(_ data: Data) -> [(type: String, body: [UInt8], crcOK: Bool)] {
        let b = [UInt8](data)
        var out: [(String, [UInt8], Bool)] = []
        var i = 8
        func be(_ at: Int) -> UInt32 { UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3]) }
        while i + 12 <= b.count {
            let n = Int(be(i))
            let typed = Array(b[(i + 4)..<(i + 8 + n)])
            let crc = typed.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            out.append((String(decoding: typed[0..<4], as: UTF8.self), Array(typed[4...]), crc == be(i + 8 + n)))
            i += 12 + n
        }
        return out
    }

    @Test func rgbRoundTripThroughZlib() throws {
        // 3 × 2: red, green, blue / black, white, grey.
        let pixels: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 128, 128, 128]
        let image = try PNGImage(width: 3, height: 2, colorType: .rgb, pixels: pixels)
        let data = try image.encoded()
        #expect(Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let parts = chunks(data)
        #expect(parts.map(\.type) == ["IHDR", "IDAT", "IEND"])
        #expect(parts.allSatisfy { $0.crcOK })
        #expect(parts[0].body == [0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0])
        // Inflate IDAT with zlib directly: each row is a filter byte then the pixels.
        var size = uLongf(2 * (1 + 9))
        var raw = [UInt8](repeating: 0, count: Int(size))
        let status = parts[1].body.withUnsafeBufferPointer { src in
            raw.withUnsafeMutableBufferPointer { uncompress($0.baseAddress, &size, src.baseAddress, uLong(src.count)) }
        }
        #expect(status == Z_OK && size == 20)
        #expect(Array(raw[1..<10]) == Array(pixels[0..<9]) && Array(raw[11..<20]) == Array(pixels[9..<18]))
        let decoded = try PNGImage.decode(data)
        #expect(decoded == image)
    }

    @Test func rgbaRoundTrip() throws {
        let pixels = (0..<(5 * 4 * 4)).map { UInt8(($0 * 37) % 256) }
        let image = try PNGImage(width: 5, height: 4, colorType: .rgba, pixels: pixels)
        let decoded = try PNGImage.decode(try image.encoded())
        #expect(decoded.colorType == .rgba && decoded.pixels == pixels && decoded.pixel(x: 4, y: 3) == Array(pixels[76..<80]))
    }

    @Test func badInputsThrow() throws {
        #expect(throws: RenderError.self) { try PNGImage(width: 2, height: 2, pixels: [0, 0, 0]) }
        #expect(throws: RenderError.self) { try PNGImage(width: 0, height: 2, pixels: []) }
        #expect(throws: RenderError.self) { try PNGImage.decode(Data("not a png".utf8)) }
        var data = try PNGImage(width: 1, height: 1, pixels: [1, 2, 3]).encoded()
        data[20] ^= 0xff   // inside IHDR: its CRC no longer matches
        #expect(throws: RenderError.self) { try PNGImage.decode(data) }
    }

    @Test func heatmapImageHasCellColoursLegendAndLabels() throws {
        let map = try Heatmap(values: [-1, 0, 0.5, 1, 2, -2], rows: 2, columns: 3, rowLabels: ["L0", "L1"],
                              columnLabels: ["a", "b", "Paris"], title: "patching", scale: .diverging)
        let data = try map.png()
        let image = try PNGImage.decode(data)
        let layout = map.rasterLayout
        #expect(image.width == layout.width && image.height == layout.height)
        for r in 0..<2 {
            for c in 0..<3 {
                let (x, y) = layout.cellCenter(row: r, column: c)
                let expected = map.colorScale.color(map[r, c])
                #expect(image.pixel(x: x, y: y) == [expected.r, expected.g, expected.b], "cell \(r),\(c)")
            }
        }
        // Extremes: ±2 are the end colours; 0 is white.
        #expect(image.pixel(x: layout.cellCenter(row: 1, column: 1).x, y: layout.cellCenter(row: 1, column: 1).y) == [178, 24, 43])
        #expect(image.pixel(x: layout.cellCenter(row: 1, column: 2).x, y: layout.cellCenter(row: 1, column: 2).y) == [33, 102, 172])
        // The legend runs from blue to red.
        #expect(image.pixel(x: layout.legendX, y: layout.legendY + 2) == [33, 102, 172])
        #expect(image.pixel(x: layout.legendX + layout.legendWidth - 1, y: layout.legendY + 2) == [178, 24, 43])
        // Labels put black ink left of the grid (row labels) and above it (column labels).
        func inked(x: Range<Int>, y: Range<Int>) -> Bool {
            y.contains { yy in x.contains { xx in image.pixel(x: xx, y: yy) == [0, 0, 0] } }
        }
        #expect(inked(x: 0..<layout.gridX, y: layout.gridY..<(layout.gridY + 2 * layout.cell)))
        #expect(inked(x: layout.gridX..<(layout.gridX + 3 * layout.cell), y: 30..<layout.gridY))
        #expect(!inked(x: layout.gridX..<(layout.gridX + 3 * layout.cell), y: layout.gridY..<(layout.gridY + 2 * layout.cell)))
    }

    @Test func largeHeatmapsShrinkTheirCells() throws {
        let n = 300
        let map = try Heatmap(values: (0..<(n * n)).map { Float($0 % 7) }, rows: n, columns: n,
                              rowLabels: (0..<n).map { "r\($0)" }, columnLabels: (0..<n).map { "c\($0)" }, title: "big", scale: .sequential)
        let layout = map.rasterLayout
        #expect(layout.cell == 3 && layout.width < 1200 && layout.labelStride > 1)
        let image = try map.pngImage()
        let (x, y) = layout.cellCenter(row: n - 1, column: n - 1)
        let expected = map.colorScale.color(map[n - 1, n - 1])
        #expect(image.pixel(x: x, y: y) == [expected.r, expected.g, expected.b])
    }
}
