import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

@Suite struct TransformerLensFormatTests {
    /// A processed model written in TransformerLens's layout loads back to the same model.
    @Test(arguments: [false, true])
    func roundTrip(llama: Bool) throws {
        let model = llama ? try LlamaFixture.loaded().model.processed() : try Fixtures.model().processed()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-tl-\(UUID().uuidString)")
        try TransformerLensFormat.write(model, to: dir)
        let file = try SafetensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        #expect(file.names.contains("blocks.0.attn.W_Q"))
        #expect(try file.tensor("blocks.0.attn.W_Q").shape == [model.config.nHeads, model.config.dModel, model.config.dHead])
        let loaded = try ModelLoader.load(path: dir.path)
        #expect(loaded.model.config == model.config)
        #expect(loaded.model.weights == model.weights)
        let ids = [1, 5, 9, 200]
        #expect(try loaded.model.run([ids]) == model.run([ids]))
    }

    @Test func badConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-tl-\(UUID().uuidString)")
        try TransformerLensFormat.write(try Fixtures.model(), to: dir)
        try Data(#"{"format": "transformer_lens", "loupe_config": {"nLayers": "two"}}"#.utf8)
            .write(to: dir.appendingPathComponent("config.json"))
        #expect(throws: ModelError.self) { try ModelLoader.load(path: dir.path) }
    }
}
