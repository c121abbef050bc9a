import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

/// The random GPT-2 fixture (processed as TransformerLens's from_pretrained does) and what
/// TransformerLens's own analyses computed on it (scripts/make_interp_fixtures.py).
enum InterpFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func model() throws -> HookedTransformer {
        try ModelLoader.load(path: directory.appendingPathComponent("gpt2-tiny").path).model.processed()
    }

    static func expected() throws -> SafetensorsFile {
        try SafetensorsFile(path: directory.appendingPathComponent("gpt2-tiny-interp.safetensors").path)
    }

    struct Meta: Decodable {
        let clean: [Int], corrupt: [Int], answer: Int, wrong: Int, repeated: [Int]
    }

    static func meta() throws -> Meta {
        try JSONDecoder().decode(Meta.self, from: Data(contentsOf: directory.appendingPathComponent("gpt2-tiny-interp.json")))
    }
}
