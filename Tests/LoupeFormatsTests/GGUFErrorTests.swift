// Broken GGUF files, built byte by byte or cut from a fixture, each rejected with its exact error.

import Foundation
import LoupeFormats
import LoupeTensor
import Testing

/// Little-endian GGUF bytes written by hand, for files no correct writer produces.
struct GGUFBytes {
    var bytes: [UInt8] = []

    /// The header: magic, version, tensor count, key-value count.
    init(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes = Array("GGUF".utf8)
        u32(version)
        u64(tensors)
        u64(kvs)
    }

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes += Array(s.utf8)
    }

    /// A key with a uint32 value.
    mutating func kv(_ key: String, uint32 v: UInt32) {
        string(key)
        u32(GGUFValueType.uint32.rawValue)
        u32(v)
    }

    mutating func tensor(_ name: String, dims: [UInt64], type: UInt32 = GGMLType.F32.rawValue, offset: UInt64 = 0) {
        string(name)
        u32(UInt32(dims.count))
        for d in dims { u64(d) }
        u32(type)
        u64(offset)
    }

    /// Zero padding up to a multiple of `alignment`, then `count` data bytes.
    mutating func data(count: Int, alignment: Int = 32) {
        bytes += [UInt8](repeating: 0, count: (alignment - bytes.count % alignment) % alignment)
        bytes += (0..<count).map { UInt8(truncatingIfNeeded: $0) }
    }

    /// Writes raw bytes to a fresh temporary file and returns its path.
    static func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-\(UUID().uuidString).gguf")
        try Data(bytes).write(to: url)
        return url.path
    }

    /// A file with the given header counts whose body is built by `body`.
    static func file(version: UInt32 = 3, tensors: UInt64 = 0, kvs: UInt64 = 0, _ body: (inout GGUFBytes) -> Void = { _ in }) -> [UInt8] {
        var b = GGUFBytes(version: version, tensors: tensors, kvs: kvs)
        body(&b)
        return b.bytes
    }
}

@Suite struct GGUFErrorTests {
    /// (what is wrong, file bytes, the error for a given path).
    static let bad: [(String, [UInt8], @Sendable (String) -> GGUFError)] = [
        ("empty file", [], { .badMagic(path: $0, found: []) }),
        ("wrong magic", Array("GGML".utf8) + [3, 0, 0, 0], { .badMagic(path: $0, found: Array("GGML".utf8)) }),
        ("a safetensors file", [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8),
         { .badMagic(path: $0, found: [8, 0, 0, 0]) }),
        ("version 1", GGUFBytes.file(version: 1), { .unsupportedVersion(path: $0, version: 1) }),
        ("version 4", GGUFBytes.file(version: 4), { .unsupportedVersion(path: $0, version: 4) }),
        ("big-endian v3", GGUFBytes.file(version: UInt32(3).byteSwapped), { .unsupportedVersion(path: $0, version: 0x0300_0000) }),
        ("magic only", Array("GGU".utf8), { .truncated(path: $0, what: "the magic", offset: 0, needed: 4, fileSize: 3) }),
        ("truncated header", Array(GGUFBytes.file().prefix(12)),
         { .truncated(path: $0, what: "the header (tensor_count)", offset: 8, needed: 8, fileSize: 12) }),
        ("truncated key-value count", Array(GGUFBytes.file().prefix(20)),
         { .truncated(path: $0, what: "the length of the key-value list (kv_count)", offset: 16, needed: 8, fileSize: 20) }),
        ("more key-values than could fit", GGUFBytes.file(kvs: 1_000_000),
         { .lengthPastEnd(path: $0, what: "the key-value list (kv_count)", length: 1_000_000, offset: 16, fileSize: 24) }),
        ("more tensors than could fit", GGUFBytes.file(tensors: 1 << 40),
         { .lengthPastEnd(path: $0, what: "the tensor list (tensor_count)", length: 1 << 40, offset: 8, fileSize: 24) }),
        ("truncated metadata value", Array(GGUFBytes.file(kvs: 1) { $0.kv("llama.block_count", uint32: 30) }.dropLast(2)),
         { .truncated(path: $0, what: "the value of 'llama.block_count'", offset: 53, needed: 4, fileSize: 55) }),
        ("truncated value type", Array(GGUFBytes.file(kvs: 1) { $0.kv("abcdef", uint32: 30) }.prefix(40)),
         { .truncated(path: $0, what: "the value type of 'abcdef'", offset: 38, needed: 4, fileSize: 40) }),
        ("key length past the end", GGUFBytes.file(kvs: 1) { $0.u64(1000); $0.u32(4); $0.u32(0) },
         { .lengthPastEnd(path: $0, what: "the key of metadata entry 0", length: 1000, offset: 24, fileSize: 40) }),
        ("string value length past the end", GGUFBytes.file(kvs: 1) { $0.string("name"); $0.u32(8); $0.u64(50); $0.u32(0) },
         { .lengthPastEnd(path: $0, what: "the string 'name'", length: 50, offset: 40, fileSize: 52) }),
        ("array length past the end", GGUFBytes.file(kvs: 1) { $0.string("tokens"); $0.u32(9); $0.u32(4); $0.u64(3); $0.u32(7) },
         { .lengthPastEnd(path: $0, what: "the array 'tokens'", length: 3, offset: 46, fileSize: 58) }),
        ("string array element past the end",
         GGUFBytes.file(kvs: 1) { $0.string("tokens"); $0.u32(9); $0.u32(8); $0.u64(2); $0.string("a"); $0.u64(9) },
         { .lengthPastEnd(path: $0, what: "element 1 of 'tokens'", length: 9, offset: 63, fileSize: 71) }),
        ("unknown value type", GGUFBytes.file(kvs: 1) { $0.string("k"); $0.u32(13); $0.u32(0) },
         { .unknownValueType(path: $0, key: "k", type: 13) }),
        ("unknown array element type", GGUFBytes.file(kvs: 1) { $0.string("k"); $0.u32(9); $0.u32(99); $0.u64(0) },
         { .unknownValueType(path: $0, key: "k", type: 99) }),
        ("arrays nested too deep", GGUFBytes.file(kvs: 1) { b in
            b.string("k")
            b.u32(9)
            for _ in 0..<20 { b.u32(9); b.u64(1) }
            b.u32(4); b.u64(0)
         }, { .nestingTooDeep(path: $0, key: "k", limit: 16) }),
        ("duplicate key", GGUFBytes.file(kvs: 2) { $0.kv("a", uint32: 1); $0.kv("a", uint32: 2) },
         { .duplicateKey(path: $0, key: "a") }),
        ("alignment zero", GGUFBytes.file(kvs: 1) { $0.kv("general.alignment", uint32: 0) },
         { .badAlignment(path: $0, found: "uint32 0") }),
        ("alignment not a power of two", GGUFBytes.file(kvs: 1) { $0.kv("general.alignment", uint32: 48) },
         { .badAlignment(path: $0, found: "uint32 48") }),
        ("alignment of the wrong type", GGUFBytes.file(kvs: 1) { $0.string("general.alignment"); $0.u32(8); $0.string("32") },
         { .badAlignment(path: $0, found: "string \"32\"") }),
        ("five dimensions", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [1, 1, 1, 1, 1]); $0.data(count: 4) },
         { .tooManyDimensions(path: $0, tensor: "t", count: 5) }),
        ("unknown ggml type", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [4], type: 99); $0.data(count: 16) },
         { .unknownGGMLType(path: $0, tensor: "t", type: 99) }),
        ("removed ggml type Q4_2", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [32], type: 4); $0.data(count: 32) },
         { .unknownGGMLType(path: $0, tensor: "t", type: 4) }),
        ("dimension product overflows", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [1 << 32, 1 << 32]); $0.data(count: 4) },
         { .dimensionOverflow(path: $0, tensor: "t", dims: [1 << 32, 1 << 32]) }),
        ("dimension above Int.max", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [1 << 63]); $0.data(count: 4) },
         { .dimensionOverflow(path: $0, tensor: "t", dims: [1 << 63]) }),
        ("byte size overflows", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [1 << 62]); $0.data(count: 4) },
         { .dimensionOverflow(path: $0, tensor: "t", dims: [1 << 62]) }),
        ("row not a whole number of blocks",
         GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [48, 2], type: GGMLType.Q4_0.rawValue); $0.data(count: 64) },
         { .rowNotBlockMultiple(path: $0, tensor: "t", rowLength: 48, type: .Q4_0) }),
        ("misaligned offset", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [2], offset: 8); $0.data(count: 64) },
         { .misalignedTensor(path: $0, tensor: "t", offset: 8, alignment: 32) }),
        ("tensor data past the end", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [4]); $0.data(count: 8) },
         { .tensorDataOutOfRange(path: $0, tensor: "t", offset: 0, byteCount: 16, dataSize: 8) }),
        ("tensor offset past the end", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [1], offset: 1 << 63); $0.data(count: 8) },
         { .tensorDataOutOfRange(path: $0, tensor: "t", offset: 1 << 63, byteCount: 4, dataSize: 8) }),
        ("no data section at all", GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [1]) },
         { .tensorDataOutOfRange(path: $0, tensor: "t", offset: 0, byteCount: 4, dataSize: 0) }),
        ("duplicate tensor", GGUFBytes.file(tensors: 2) { $0.tensor("t", dims: [1]); $0.tensor("t", dims: [1], offset: 32); $0.data(count: 64) },
         { .duplicateTensor(path: $0, name: "t") }),
        ("truncated tensor info", Array(GGUFBytes.file(tensors: 1) { $0.tensor("t", dims: [1, 2, 3]) }.dropLast(10)),
         { .truncated(path: $0, what: "the type of tensor 't'", offset: 61, needed: 4, fileSize: 63) }),
    ]

    @Test(arguments: 0..<bad.count)
    func badFilesThrowTypedErrors(index: Int) throws {
        let (what, bytes, error) = Self.bad[index]
        let path = try GGUFBytes.temporaryFile(bytes)
        #expect(throws: error(path), "\(what)") { try GGUFFile(path: path) }
    }

    @Test func truncatedFixtureLosesItsLastTensor() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: GGUFFixtures.path("q4_0.gguf"))))
        let whole = try GGUFFile(path: GGUFFixtures.path("q4_0.gguf"))
        let cube = try whole.info("cube")
        let path = try GGUFBytes.temporaryFile(Array(bytes.dropLast(100)))
        let dataSize = bytes.count - 100 - whole.dataOffset
        #expect(throws: GGUFError.tensorDataOutOfRange(path: path, tensor: "cube", offset: UInt64(cube.offset),
                                                        byteCount: cube.byteCount, dataSize: dataSize)) {
            try GGUFFile(path: path)
        }
    }

    @Test func unsupportedTypeOpensButDoesNotDequantize() throws {
        // IQ2_XXS: 256 elements in 66 bytes. The file is valid; only dequantizing it is not supported.
        let path = try GGUFBytes.temporaryFile(GGUFBytes.file(tensors: 2) { b in
            b.tensor("iq", dims: [256], type: GGMLType.IQ2_XXS.rawValue)
            b.tensor("ok", dims: [2], offset: 96)
            b.data(count: 128)
        })
        let file = try GGUFFile(path: path)
        #expect(try file.info("iq").type == .IQ2_XXS && (try file.info("iq").byteCount) == 66)
        #expect(throws: GGUFError.unsupportedGGMLType(path: path, tensor: "iq", type: .IQ2_XXS)) { try file.tensor("iq") }
        #expect(try file.tensor("ok").shape == [2])
        #expect(throws: GGUFError.missingTensor(path: path, name: "nope")) { try file.info("nope") }
    }

    @Test func emptyArraysZeroSizedTensorsAndNoTensors() throws {
        let path = try GGUFBytes.temporaryFile(GGUFBytes.file(tensors: 2, kvs: 2) { b in
            b.string("empty")
            b.u32(9); b.u32(8); b.u64(0)
            b.string("scalar-count")
            b.u32(GGUFValueType.uint16.rawValue); b.bytes += [7, 0]
            b.tensor("none", dims: [0, 3])
            b.tensor("scalar", dims: [])
            b.data(count: 4)
        })
        let file = try GGUFFile(path: path)
        #expect(try file.stringArray("empty") == [])
        #expect(try file.value("empty").typeDescription == "array of string")
        #expect(try file.int("scalar-count") == 7)
        #expect(try file.tensor("none").shape == [3, 0])
        #expect(try file.tensor("scalar").shape == [])
        let bare = try GGUFFile(path: try GGUFBytes.temporaryFile(GGUFBytes.file()))
        #expect(bare.metadata.isEmpty && bare.tensorInfos.isEmpty)
    }

    @Test func missingFile() {
        #expect(throws: FileError.notFound(path: "/nonexistent/model.gguf")) { try GGUFFile(path: "/nonexistent/model.gguf") }
    }

    /// (error, its message).
    static let messages: [(GGUFError, String)] = [
        (.badMagic(path: "m.gguf", found: [8, 0, 0, 0]), #"m.gguf: not a GGUF file: expected the magic "GGUF", found "\x8\x0\x0\x0""#),
        (.unsupportedVersion(path: "m.gguf", version: 1), "m.gguf: GGUF version 1 is not supported; expected 2 or 3 (v1 used 32-bit counts)"),
        (.unsupportedVersion(path: "m.gguf", version: 0x0300_0000),
         "m.gguf: GGUF version reads as 50331648: a big-endian file (version 3); Loupe reads little-endian GGUF v2 and v3"),
        (.lengthPastEnd(path: "m.gguf", what: "the array 'tokenizer.ggml.tokens'", length: 49152, offset: 900, fileSize: 1000),
         "m.gguf: the array 'tokenizer.ggml.tokens' has length 49152 at offset 900, which runs past the end of the file (1000 bytes)"),
        (.tensorDataOutOfRange(path: "m.gguf", tensor: "token_embd.weight", offset: 0, byteCount: 30_081_024, dataSize: 1000),
         "m.gguf: tensor 'token_embd.weight' needs 30081024 bytes at data offset 0, past the 1000 bytes of the data section (the file may be truncated)"),
        (.rowNotBlockMultiple(path: "m.gguf", tensor: "t", rowLength: 48, type: .Q4_K),
         "m.gguf: tensor 't' has rows of 48 elements, not a multiple of the Q4_K block size 256"),
        (.unsupportedGGMLType(path: "m.gguf", tensor: "blk.0.ffn_up.weight", type: .IQ2_XXS),
         "m.gguf: tensor 'blk.0.ffn_up.weight' has type IQ2_XXS; Loupe dequantizes F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K"),
        (.missingKey(path: "m.gguf", key: "llama.block_count"), "m.gguf: no metadata key 'llama.block_count'"),
    ]

    @Test(arguments: 0..<messages.count)
    func errorMessagesNameTheProblem(index: Int) {
        let (error, message) = Self.messages[index]
        #expect(error.description == message)
    }
}
