// Products with quantized weights read in place (QuantizedMatrix, CKernels/quant.c) against the
// reference dequantizer (itself bit-exact with gguf-py) and a float64 product: every type, one to
// seventeen activation rows (the decode-and-dot path up to eight, dequantized tiles + BLAS above), rows
// split over threads, several tiles.

import Foundation
import LoupeFormats
import LoupeTensor
import Testing

/// A GGUF file of one random matrix, written for a test.
enum RandomGGUF {
    /// Writes `[rows, columns]` of `type` with random quants and valid scales; returns its path.
    static func write(type: GGMLType, rows: Int, columns: Int, seed: UInt64, to dir: URL) throws -> String {
        var rng = SplitMix(state: seed)
        let blocks = rows * columns / type.blockSize
        var data = [UInt8]()
        data.reserveCapacity(blocks * type.bytesPerBlock)
        /// f16 bits of ±(0.5 … 1.5) · 2^-6: a plausible scale.
        func scale() -> [UInt8] {
            let bits = halfBits(Float(rng.unit() + 0.5) / 64 * (rng.next() & 1 == 0 ? 1 : -1))
            return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
        }
        switch type {
        case .F32:
            for _ in 0..<(rows * columns) { withUnsafeBytes(of: Float(rng.unit() * 2 - 1).bitPattern.littleEndian) { data += $0 } }
        case .F16:
            for _ in 0..<(rows * columns) { let b = halfBits(Float(rng.unit() * 2 - 1)); data += [UInt8(b & 0xFF), UInt8(b >> 8)] }
        case .BF16:
            for _ in 0..<(rows * columns) { let b = UInt16(Float(rng.unit() * 2 - 1).bitPattern >> 16); data += [UInt8(b & 0xFF), UInt8(b >> 8)] }
        default:
            // Scales (f16) where each type keeps them; every other byte random.
            let scaleOffsets: [Int]
            switch type {
            case .Q4_0, .Q5_0, .Q8_0: scaleOffsets = [0]
            case .Q4_1, .Q5_1, .Q4_K, .Q5_K: scaleOffsets = [0, 2]
            case .Q6_K: scaleOffsets = [208]
            default: throw GGUFError.unsupportedGGMLType(path: "test", tensor: "w", type: type)
            }
            for _ in 0..<blocks {
                var block = (0..<type.bytesPerBlock).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                for o in scaleOffsets { let s = scale(); block[o] = s[0]; block[o + 1] = s[1] }
                data += block
            }
        }
        var out = [UInt8]()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        out += Array("GGUF".utf8); u32(3); u64(1); u64(0)
        u64(1); out += Array("w".utf8)
        u32(2); u64(UInt64(columns)); u64(UInt64(rows)); u32(type.rawValue); u64(0)
        while out.count % 32 != 0 { out.append(0) }
        out += data
        let path = dir.appendingPathComponent("\(type)-\(rows)x\(columns).gguf")
        try Data(out).write(to: path)
        return path.path
    }

    /// IEEE half bits of `x` (round to nearest; |x| within the normal range).
    static func halfBits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exp = Int((bits >> 23) & 0xFF) - 127 + 15
        guard exp > 0 else { return sign }
        let mant = bits & 0x7F_FFFF
        var h = UInt32(exp) << 10 | mant >> 13
        if mant & 0x1FFF > 0x1000 || (mant & 0x1FFF == 0x1000 && h & 1 == 1) { h += 1 }
        return sign | UInt16(h)
    }

    typealias SplitMix = BPETestData.SplitMix64
}

@Suite struct QuantizedMatrixTests {
    static let scratch: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-qmatrix-\(getpid())")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()

    /// `y = x · Wᵀ` in float64 from the reference dequantization, and the error bound for float32 sums:
    /// 1e-5 of Σ|x·w| (plus a floor).
    static func reference(_ w: Tensor, _ x: [Float], nx: Int) -> (y: [Double], bound: [Double]) {
        let (n, k) = (w.shape[0], w.shape[1])
        var y = [Double](repeating: 0, count: nx * n), bound = y
        for r in 0..<nx {
            for o in 0..<n {
                var s = 0.0, a = 0.0
                for i in 0..<k {
                    let wi = Double(w.scalars[o * k + i])
                    let p = Double(x[r * k + i]) * wi
                    s += p; a += abs(p)
                }
                y[r * n + o] = s
                bound[r * n + o] = 1e-5 * a + 1e-6
            }
        }
        return (y, bound)
    }

    static func check(_ m: QuantizedMatrix, against w: Tensor, rowCounts: [Int], seed: UInt64, outliers: Bool = false) {
        var rng = RandomGGUF.SplitMix(state: seed)
        for nx in rowCounts {
            // With `outliers`, one activation in 50 is ±300 and the rest are within ±0.01 (as residual
            // streams have a few huge dimensions).
            let x = (0..<(nx * m.columns)).map { _ -> Float in
                outliers ? (rng.next() % 50 == 0 ? (rng.next() & 1 == 0 ? 300 : -300) : Float(rng.unit() * 0.02 - 0.01))
                    : Float(rng.unit() * 2 - 1)
            }
            var y = [Float](repeating: .nan, count: nx * m.rows)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { m.multiply(xp.baseAddress!, rows: nx, into: $0.baseAddress!) }
            }
            let (want, bound) = reference(w, x, nx: nx)
            let bad = (0..<y.count).filter { !(abs(Double(y[$0]) - want[$0]) <= bound[$0]) }
            #expect(bad.isEmpty, "\(m.type) nx=\(nx): \(bad.count) of \(y.count) outputs off, e.g. \(bad.first.map { "\(y[$0]) vs \(want[$0])" } ?? "")")
        }
    }

    @Test(arguments: GGUFFixtures.types)
    func productsMatchTheDequantizedWeights(type: GGMLType) throws {
        // 70 rows: with one activation row, enough work that the rows are split over two threads.
        let path = try RandomGGUF.write(type: type, rows: 70, columns: 512, seed: UInt64(type.rawValue), to: Self.scratch)
        let file = try GGUFFile(path: path)
        let m = try file.matrix("w")
        #expect(m.rows == 70 && m.columns == 512 && m.type == type)
        let w = try file.tensor("w")
        Self.check(m, against: w, rowCounts: [1, 2, 3, 4, 5, 8, 9, 17], seed: 7)
        // Decoding is the reference dequantizer's arithmetic: bit for bit.
        #expect(m.dequantized().scalars.map(\.bitPattern) == w.scalars.map(\.bitPattern))
        var row = [Float](repeating: 0, count: 512)
        row.withUnsafeMutableBufferPointer { m.row(69, into: $0.baseAddress!) }
        #expect(row.map(\.bitPattern) == w.scalars[(69 * 512)...].map(\.bitPattern))
    }

    /// The gguf-py fixtures: products equal their dequantization too (a second source of block data).
    @Test(arguments: GGUFFixtures.types)
    func fixtureMatrices(type: GGMLType) throws {
        let file = try GGUFFile(path: GGUFFixtures.path("\(type.description.lowercased()).gguf"))
        Self.check(try file.matrix("matrix"), against: try file.tensor("matrix"), rowCounts: [1, 4, 11], seed: 3)
        #expect(throws: GGUFError.self) { try file.matrix("cube") }   // three dimensions
        #expect(throws: GGUFError.self) { try file.matrix("nothing") }
    }

    /// Activations with a few huge values (as residual streams have): small ones keep their precision.
    @Test(arguments: [GGMLType.Q4_0, .Q4_1, .Q8_0, .Q4_K])
    func outlierActivations(type: GGMLType) throws {
        let path = try RandomGGUF.write(type: type, rows: 40, columns: 512, seed: 17, to: Self.scratch)
        let file = try GGUFFile(path: path)
        Self.check(try file.matrix("w"), against: try file.tensor("w"), rowCounts: [1, 3], seed: 19, outliers: true)
    }

    /// An odd number of blocks a row (17): the one-row kernels take blocks in pairs and finish with the last alone.
    @Test(arguments: [GGMLType.Q4_0, .Q4_1, .Q8_0, .Q5_0])
    func oddBlockCount(type: GGMLType) throws {
        let path = try RandomGGUF.write(type: type, rows: 36, columns: 544, seed: 29, to: Self.scratch)
        let file = try GGUFFile(path: path)
        Self.check(try file.matrix("w"), against: try file.tensor("w"), rowCounts: [1, 2, 3, 5], seed: 31)
        Self.check(try file.matrix("w"), against: try file.tensor("w"), rowCounts: [1], seed: 37, outliers: true)
    }

    /// More weight rows than one tile holds, with many activation rows (the BLAS path), and one row.
    @Test func severalTiles() throws {
        let path = try RandomGGUF.write(type: .Q4_1, rows: 4200, columns: 256, seed: 11, to: Self.scratch)
        let file = try GGUFFile(path: path)
        Self.check(try file.matrix("w"), against: try file.tensor("w"), rowCounts: [1, 10], seed: 5)
    }

    @Test func singleThreadGivesTheSameProducts() throws {
        let path = try RandomGGUF.write(type: .Q4_K, rows: 96, columns: 1024, seed: 13, to: Self.scratch)
        let m = try GGUFFile(path: path).matrix("w")
        let x = (0..<1024).map { Float($0 % 17) / 17 - 0.5 }
        func product() -> [Float] {
            var y = [Float](repeating: 0, count: 96)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { m.multiply(xp.baseAddress!, rows: 1, into: $0.baseAddress!) } }
            return y
        }
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        BLAS.setThreads(2)
        let two = product()
        BLAS.setThreads(1)
        // Each output is one row's dot product whichever thread computes it: identical bits.
        #expect(product().map(\.bitPattern) == two.map(\.bitPattern))
    }

    @Test func unsupportedTypesAreRefused() {
        #expect(QuantizedMatrix.supports(.Q4_K))
        #expect(!QuantizedMatrix.supports(.IQ2_XXS))
        #expect(!QuantizedMatrix.supports(.Q8_1))
    }
}

@Suite struct TruncatedGGUFTests {
    /// A file shorter than its tensor table says is refused when opened, naming the tensor — before any
    /// product could read past the mapping.
    @Test func shortFileIsAnErrorAtLoad() throws {
        let dir = QuantizedMatrixTests.scratch
        let path = try RandomGGUF.write(type: .Q4_1, rows: 8, columns: 256, seed: 23, to: dir)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let short = dir.appendingPathComponent("short.gguf")
        try bytes.prefix(bytes.count - 7).write(to: short)
        #expect {
            _ = try GGUFFile(path: short.path)
        } throws: { error in
            guard case GGUFError.tensorDataOutOfRange(_, let tensor, _, _, _) = error else { return false }
            return tensor == "w" && "\(error)".contains("w")
        }
    }
}

extension BPETestData.SplitMix64 {
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
