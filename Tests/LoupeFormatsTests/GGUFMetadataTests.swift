// GGUF metadata: every value type as gguf-py writes it, nested arrays, the typed accessors and their
// errors, alignment, and v2 files.

import Foundation
import LoupeFormats
import LoupeTensor
import Testing

@Suite struct GGUFMetadataTests {
    let file: GGUFFile
    let path = GGUFFixtures.path("metadata.gguf")

    init() throws { file = try GGUFFile(path: path) }

    @Test func headerAndLayout() throws {
        #expect(file.version == 3)
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(file.metadataKeys.first == "general.architecture")
        #expect(file.metadataKeys.count == file.metadata.count)
        #expect(try file.string("general.architecture") == "loupe-test")
        #expect(file.tensorInfos.map(\.name) == ["vector", "hyper"])
        #expect(file.tensorInfos.allSatisfy { $0.offset % 64 == 0 })
    }

    /// (key, value as stored) for every scalar type.
    static let scalars: [(String, GGUFValue)] = [
        ("test.uint8", .uint8(255)), ("test.int8", .int8(-128)),
        ("test.uint16", .uint16(65535)), ("test.int16", .int16(-32768)),
        ("test.uint32", .uint32(4_294_967_295)), ("test.int32", .int32(-2_147_483_648)),
        ("test.uint64", .uint64(.max)), ("test.uint64_small", .uint64(12_345_678_901)), ("test.int64", .int64(.min)),
        ("test.float32", .float32(0.1)), ("test.float64", .float64(0.1)),
        ("test.bool_true", .bool(true)), ("test.bool_false", .bool(false)),
        ("test.string", .string("héllo, 世界 🦙")), ("test.empty_string", .string("")),
    ]

    @Test(arguments: scalars.map(\.0))
    func scalarValues(key: String) throws {
        let want = try #require(Self.scalars.first { $0.0 == key }?.1)
        #expect(try file.value(key) == want)
    }

    @Test func arraysOfEveryType() throws {
        let u8 = try file.value("test.array.uint8")
        #expect(u8 == .array(elementType: .uint8, [.uint8(0), .uint8(1), .uint8(255)]))
        #expect(try file.intArray("test.array.uint8") == [0, 1, 255])
        #expect(try file.intArray("test.array.int8") == [-128, 0, 127])
        #expect(try file.intArray("test.array.uint16") == [0, 65535])
        #expect(try file.intArray("test.array.int16") == [-32768, 32767])
        #expect(try file.intArray("test.array.uint32") == [0, 4_294_967_295])
        #expect(try file.intArray("test.array.int32") == [-2_147_483_648, 7])
        #expect(try file.intArray("test.array.uint64") == [0, 1 << 40])
        #expect(try file.intArray("test.array.int64") == [Int.min, 1 << 62])
        #expect(try file.floatArray("test.array.float32") == [1.5, -0.25, 0.1])
        #expect(try file.floatArray("test.array.float64") == [0.1, -2.0])
        #expect(try file.value("test.array.float64") == .array(elementType: .float64, [.float64(0.1), .float64(-2)]))
        #expect(try file.value("test.array.bool") == .array(elementType: .bool, [.bool(true), .bool(false), .bool(true)]))
        #expect(try file.stringArray("test.array.string") == ["a", "", "bc", "Ġthe", "<|endoftext|>"])
    }

    @Test func nestedArrays() throws {
        func ints(_ v: [Int32]) -> GGUFValue { .array(elementType: .int32, v.map { .int32($0) }) }
        #expect(try file.value("test.nested.int") == .array(elementType: .array, [ints([1, 2, 3]), ints([4]), ints([5, 6])]))
        #expect(try file.value("test.nested.string") == .array(elementType: .array, [
            .array(elementType: .string, [.string("x"), .string("y")]), .array(elementType: .string, [.string("z")]),
        ]))
        #expect(try file.value("test.nested.deep") == .array(elementType: .array, [
            .array(elementType: .array, [ints([1]), ints([2, 3])]), .array(elementType: .array, [ints([4])]),
        ]))
        #expect(try file.value("test.nested.int").typeDescription == "array of array")
    }

    @Test func typedAccessors() throws {
        #expect(try file.int("test.uint8") == 255)
        #expect(try file.int("test.int16") == -32768)
        #expect(try file.int("test.uint32") == 4_294_967_295)
        #expect(try file.int("test.uint64_small") == 12_345_678_901)
        #expect(try file.int("test.int64") == Int.min)
        #expect(try file.float("test.float32") == 0.1)
        #expect(try file.float("test.float64") == Float(0.1 as Double))
        #expect(try file.bool("test.bool_true") && !(try file.bool("test.bool_false")))
        #expect(try file.string("test.empty_string") == "")
        #expect(file.has("test.int8") && !file.has("test.nope"))
        #expect(try file.optionalInt("test.nope") == nil)
        #expect(try file.optionalInt("test.int8") == -128)
        #expect(try file.optionalString("test.string") == "héllo, 世界 🦙")
        #expect(try file.optionalFloat("test.nope") == nil && (try file.optionalBool("test.bool_true")) == true)
    }

    /// (what is asked for, the error).
    static let accessorErrors: [(String, @Sendable (GGUFFile) throws -> Void, @Sendable (String) -> GGUFError)] = [
        ("missing key", { _ = try $0.string("llama.block_count") }, { .missingKey(path: $0, key: "llama.block_count") }),
        ("int of a string", { _ = try $0.int("test.string") },
         { .wrongType(path: $0, key: "test.string", expected: "an integer", found: "string") }),
        ("string of an int", { _ = try $0.string("test.uint32") },
         { .wrongType(path: $0, key: "test.uint32", expected: "string", found: "uint32") }),
        ("float of an int", { _ = try $0.float("test.int32") },
         { .wrongType(path: $0, key: "test.int32", expected: "float32 or float64", found: "int32") }),
        ("bool of a uint8", { _ = try $0.bool("test.uint8") },
         { .wrongType(path: $0, key: "test.uint8", expected: "bool", found: "uint8") }),
        ("string array of ints", { _ = try $0.stringArray("test.array.int32") },
         { .wrongType(path: $0, key: "test.array.int32", expected: "array of string", found: "array of int32") }),
        ("int array of floats", { _ = try $0.intArray("test.array.float32") },
         { .wrongType(path: $0, key: "test.array.float32", expected: "array of an integer type", found: "array of float32") }),
        ("float array of a scalar", { _ = try $0.floatArray("test.float32") },
         { .wrongType(path: $0, key: "test.float32", expected: "array of float32 or float64", found: "float32") }),
        ("int array of nested arrays", { _ = try $0.intArray("test.nested.int") },
         { .wrongType(path: $0, key: "test.nested.int", expected: "array of an integer type", found: "array of array") }),
        ("uint64 above Int.max", { _ = try $0.int("test.uint64") },
         { .valueOutOfRange(path: $0, key: "test.uint64", value: "18446744073709551615") }),
        ("optional of the wrong type", { _ = try $0.optionalBool("test.string") },
         { .wrongType(path: $0, key: "test.string", expected: "bool", found: "string") }),
        ("missing tensor", { _ = try $0.tensor("token_embd.weight") }, { .missingTensor(path: $0, name: "token_embd.weight") }),
    ]

    @Test(arguments: 0..<accessorErrors.count)
    func accessorErrorsAreTyped(index: Int) {
        let (what, call, error) = Self.accessorErrors[index]
        #expect(throws: error(path), "\(what)") { try call(file) }
    }

    @Test func smallTensorsInAnAlignedFile() throws {
        let expected = try GGUFFixtures.expected()
        let vector = try file.tensor("vector")
        #expect(vector.shape == [5] && vector.scalars == [-2, -1, 0, 1, 2])
        let hyper = try file.tensor("hyper")
        #expect(try file.info("hyper").dims == [2, 3, 1, 2])
        #expect(hyper == (try expected.tensor("metadata/hyper")))
        #expect(hyper.shape == [2, 1, 3, 2])
    }

    /// v2 differs from v3 only in v3 allowing big-endian files, so a v3 file relabelled v2 reads the same.
    @Test func readsVersion2() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[4] = 2
        let v2 = try GGUFFile(path: try GGUFBytes.temporaryFile(bytes))
        #expect(v2.version == 2)
        #expect(v2.metadata == file.metadata)
        #expect(v2.tensorInfos == file.tensorInfos)
        #expect(try v2.tensor("hyper") == file.tensor("hyper"))
    }

    @Test func valueDescriptions() throws {
        #expect(try file.value("test.array.string").description == #"["a", "", "bc", "Ġthe", "<|endoftext|>"]"#)
        #expect(GGUFValue.array(elementType: .uint8, (0..<10).map { .uint8($0) }).description
            == "[0, 1, 2, 3, 4, 5, 6, 7, … (10 in all)]")
        #expect(GGUFError.wrongType(path: "m.gguf", key: "llama.block_count", expected: "an integer", found: "string").description
            == "m.gguf: metadata key 'llama.block_count' should be an integer, found string")
    }
}
