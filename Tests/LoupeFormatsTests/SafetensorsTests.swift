// safetensors: round trips and every kind of bad header, each with a typed error.

import Foundation
import LoupeFormats
import LoupeTensor
import Testing

/// Writes raw bytes to a fresh temporary file.
func temporaryFile(_ bytes: [UInt8], suffix: String = ".safetensors") throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-\(UUID().uuidString)\(suffix)")
    try Data(bytes).write(to: url)
    return url.path
}

/// A safetensors file from a header string and a data section, with the header length as given
/// (or the true one).
func safetensorsBytes(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out += $0 }
    return out + h + data
}

@Suite struct SafetensorsTests {
    @Test func roundTripThroughWriter() throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, -6.5])
        let b = Tensor(scalar: 7)
        let empty = Tensor(zeros: [0, 4])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-rt-\(UUID().uuidString).safetensors")
        try writeSafetensors([("a", a), ("b", b), ("empty", empty)], metadata: ["format": "pt"], to: url)
        let f = try SafetensorsFile(path: url.path)
        #expect(f.names == ["a", "b", "empty"])
        #expect(try f.tensor("a") == a)
        #expect(try f.tensor("b") == b)
        #expect(try f.tensor("empty").shape == [0, 4])
        #expect(f.metadata["format"] == "pt")
    }

    @Test func readsHalfAndBFloat16() throws {
        // 1.0, -2.0, 0.5 as F16 (0x3C00, 0xC000, 0x3800) and as BF16 (0x3F80, 0xC000, 0x3F00).
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38]
        let bf16: [UInt8] = [0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F]
        let header = #"{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[6,12]}}"#
        let f = try SafetensorsFile(path: try temporaryFile(safetensorsBytes(header: header, data: f16 + bf16)))
        #expect(try f.tensor("h").scalars == [1, -2, 0.5])
        #expect(try f.tensor("b").scalars == [1, -2, 0.5])
    }

    @Test func halfPrecisionSpecialValues() {
        #expect(halfToFloat(0x7C00) == .infinity)
        #expect(halfToFloat(0xFC00) == -.infinity)
        #expect(halfToFloat(0x7E00).isNaN)
        #expect(halfToFloat(0x0001) == Float(sign: .plus, exponent: -24, significand: 1))   // smallest subnormal
        #expect(halfToFloat(0x8000) == 0 && halfToFloat(0x8000).sign == .minus)
        #expect(halfToFloat(0x7BFF) == 65504)
    }

    /// (file bytes, the error expected); `path` is filled in per case.
    static let bad: [(String, [UInt8], @Sendable (String) -> SafetensorsError)] = [
        ("shorter than the length prefix", [1, 2, 3], { .tooShort(path: $0, size: 3) }),
        ("header length past the end",
         safetensorsBytes(header: "{}", data: [], declaredLength: 1000), { .headerPastEnd(path: $0, headerLength: 1000, fileSize: 10) }),
        ("truncated file (header cut short)",
         Array(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]).prefix(30)),
         { .headerPastEnd(path: $0, headerLength: 54, fileSize: 30) }),
        ("header is not JSON", safetensorsBytes(header: "{not json", data: []), { .malformedHeader(path: $0, reason: "the header is not valid JSON") }),
        ("header is a JSON array", safetensorsBytes(header: "[]", data: []), { .malformedHeader(path: $0, reason: "expected a JSON object at the top level") }),
        ("unknown dtype", safetensorsBytes(header: #"{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
         { .unknownDType(path: $0, tensor: "a", dtype: "F12") }),
        ("negative dimension", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
         { .badShape(path: $0, tensor: "a", reason: "negative dimension in shape [-1]") }),
        ("offsets past the data", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]),
         { .offsetsOutOfRange(path: $0, tensor: "a", begin: 0, end: 8, dataSize: 4) }),
        ("offsets reversed", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]),
         { .offsetsOutOfRange(path: $0, tensor: "a", begin: 4, end: 0, dataSize: 4) }),
        ("shape × dtype ≠ byte length", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
         { .byteLengthMismatch(path: $0, tensor: "a", shape: [3], dtype: "F32", expected: 12, found: 8) }),
        ("overlapping tensors", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: Array(repeating: 0, count: 12)),
         { .overlapping(path: $0, first: "a", second: "b") }),
    ]

    @Test(arguments: 0..<bad.count)
    func badFilesThrowTypedErrors(index: Int) throws {
        let (what, bytes, error) = Self.bad[index]
        let path = try temporaryFile(bytes)
        #expect(throws: error(path), "\(what)") { try SafetensorsFile(path: path) }
    }

    @Test func missingTensorAndMissingFile() throws {
        let path = try temporaryFile(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 128, 63]))
        let f = try SafetensorsFile(path: path)
        #expect(try f.tensor("a").scalars == [1])
        #expect(throws: SafetensorsError.missingTensor(path: path, name: "wte.weight")) { try f.tensor("wte.weight") }
        #expect(throws: FileError.notFound(path: "/nonexistent/model.safetensors")) {
            try SafetensorsFile(path: "/nonexistent/model.safetensors")
        }
    }

    @Test func errorMessagesNameTheProblem() {
        let e = SafetensorsError.byteLengthMismatch(path: "m.safetensors", tensor: "h.0.attn.c_attn.weight", shape: [768, 2304],
                                                    dtype: "F32", expected: 7_077_888, found: 100)
        #expect(e.description == "m.safetensors: tensor 'h.0.attn.c_attn.weight' of shape [768, 2304] and dtype F32 needs 7077888 bytes, but its data_offsets span 100")
    }
}

@Suite struct NPYTests {
    @Test func headerAndData() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-\(UUID().uuidString).npy")
        try writeNPY(t, to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        #expect(Array(bytes[0..<6]) == [0x93] + Array("NUMPY".utf8))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"))
        #expect(header.hasSuffix("\n"))
        #expect(bytes.count == 10 + headerLength + 24)
        let first = bytes[(10 + headerLength)..<(14 + headerLength)]
        #expect(Array(first) == [0, 0, 128, 63])   // 1.0f little-endian
    }
}
