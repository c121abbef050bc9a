// GGUF dequantization: every supported type against gguf-py's `gguf.quants.dequantize`, bit for bit.
// Fixtures come from scripts/make_gguf_fixtures.py.

import Foundation
import LoupeFormats
import LoupeTensor
import Testing

/// The GGUF fixtures, kept in one namespace so nothing here collides with other test files.
enum GGUFFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent("gguf")

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// `gguf.quants.dequantize` of every fixture tensor, keyed `<file stem>/<tensor>`.
    static func expected() throws -> SafetensorsFile { try SafetensorsFile(path: path("expected.safetensors")) }

    /// The types with a fixture file `<type>.gguf`, lower-cased.
    static let types: [GGMLType] = [.F32, .F16, .BF16, .Q8_0, .Q4_0, .Q4_1, .Q5_0, .Q5_1, .Q4_K, .Q5_K, .Q6_K]

    /// The number of elements whose bit patterns differ, and the largest absolute difference among the
    /// finite ones (NaNs compare by bit pattern, so a NaN matches only the same NaN).
    static func mismatch(_ a: Tensor, _ b: Tensor) -> (count: Int, maxDiff: Float) {
        var count = 0
        var maxDiff: Float = 0
        for (x, y) in zip(a.scalars, b.scalars) where x.bitPattern != y.bitPattern {
            count += 1
            if x.isFinite && y.isFinite { maxDiff = max(maxDiff, abs(x - y)) }
        }
        return (count, maxDiff)
    }
}

@Suite struct GGUFDequantizeTests {
    @Test(arguments: GGUFFixtures.types)
    func matchesGGUFPyBitForBit(type: GGMLType) throws {
        let stem = type.description.lowercased()
        let file = try GGUFFile(path: GGUFFixtures.path("\(stem).gguf"))
        let expected = try GGUFFixtures.expected()
        #expect(file.tensorNames == ["matrix", "cube"])
        #expect(try file.int("general.file_type_under_test") == Int(type.rawValue))
        for info in file.tensorInfos {
            #expect(info.type == type)
            let want = try expected.tensor("\(stem)/\(info.name)")
            let got = try file.tensor(info.name)
            // numpy's shape is ggml's dims reversed.
            #expect(got.shape == want.shape, "\(stem)/\(info.name)")
            #expect(info.dims == want.shape.reversed(), "\(stem)/\(info.name)")
            let (count, maxDiff) = GGUFFixtures.mismatch(got, want)
            #expect(count == 0, "\(stem)/\(info.name): \(count) of \(want.count) elements differ, maxdiff = \(maxDiff)")
        }
    }

    @Test func shapesAreDimsReversed() throws {
        let file = try GGUFFile(path: GGUFFixtures.path("q4_k.gguf"))
        let cube = try file.info("cube")
        #expect(cube.dims == [256, 3, 2])
        #expect(cube.shape == [2, 3, 256])
        #expect(cube.elementCount == 1536)
        #expect(cube.byteCount == 6 * 144)  // six 256-element blocks of 144 bytes
        #expect(try file.tensor("cube").shape == [2, 3, 256])
        let matrix = try file.info("matrix")
        #expect(matrix.dims == [512, 2] && matrix.shape == [2, 512])
    }

    /// Rows of the stored matrix are contiguous runs of blocks: row 1 of a [2, 512] Q8_0 tensor starts
    /// at block 16, so it depends only on the bytes after the first 16 × 34.
    @Test func rowsAreContiguousBlocks() throws {
        let file = try GGUFFile(path: GGUFFixtures.path("q8_0.gguf"))
        let info = try file.info("matrix")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file.path))
        let row1 = bytes[(file.dataOffset + info.offset + 16 * 34)...].prefix(34)
        let d = halfToFloat(UInt16(row1[row1.startIndex]) | UInt16(row1[row1.startIndex + 1]) << 8)
        let q = Int8(bitPattern: row1[row1.startIndex + 2])
        #expect(try file.tensor("matrix").item([1, 0]) == Float(q) * d)
    }

    @Test func knownTypeSizes() {
        #expect(GGMLType.Q4_K.blockSize == 256 && GGMLType.Q4_K.bytesPerBlock == 144)
        #expect(GGMLType.Q5_K.bytesPerBlock == 176 && GGMLType.Q6_K.bytesPerBlock == 210)
        #expect(GGMLType.Q4_1.blockSize == 32 && GGMLType.Q4_1.bytesPerBlock == 20)
        #expect(GGMLType.Q5_0.bytesPerBlock == 22 && GGMLType.Q5_1.bytesPerBlock == 24 && GGMLType.Q8_0.bytesPerBlock == 34)
        #expect(GGMLType.BF16.rawValue == 30 && GGMLType.IQ2_XXS.rawValue == 16 && GGMLType(rawValue: 4) == nil)
        #expect(GGMLType.allCases.filter(\.isDequantizable).count == 11)
        #expect(GGMLType.IQ4_XS.description == "IQ4_XS")
    }
}
