import ArgumentParser
import Foundation
import LoupeModels

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a known model into Loupe's cache (~/.cache/loupe, or $LOUPE_HOME), checked by sha256.",
        discussion: """
            Example:
              loupe fetch smollm2-135m
            """)

    @Argument(help: "A model name (see `loupe models`).")
    var name: String

    func run() throws {
        guard let model = ModelRegistry.model(named: name) else {
            throw FetchError.unknownModel(name: name, known: ModelRegistry.known.map(\.name))
        }
        let path = try ModelRegistry.fetch(model) { FileHandle.standardError.write(Data("fetch: \($0)\n".utf8)) }
        print(path.path)
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the models Loupe knows by name, which are cached, and the architectures it opens.",
        discussion: """
            Any Hugging Face folder (config.json + model.safetensors or a sharded index) of a listed architecture, or a GGUF file of a listed GGUF arch, can be given as --model.

            Example:
              loupe models
            """)

    func run() throws {
        defer {
            print("\narchitectures (Hugging Face folders: config.json + safetensors, f32/f16/bf16, sharded or not)")
            let rows = Architecture.all.map { a in
                [a.hfClass, a.modelTypes.joined(separator: ", "), a.gguf.map { "gguf: \($0)" } ?? "", a.features, a.examples]
            }
            let widths = (0..<4).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for r in rows {
                print("  " + (0..<4).map { r[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  e.g. " + r[4])
            }
        }
        for m in ModelRegistry.shipped {
            let default_ = m.name == ModelRegistry.defaultModel ? " (the default)" : ""
            print("\(m.name)\(default_)\n  \(m.summary)\n  \(ModelRegistry.shippedPath(m.name) ?? "missing from this build")")
        }
        print("\ncache: \(ModelRegistry.home.path)\n")
        for m in ModelRegistry.known {
            let path = ModelRegistry.cachedPath(m)
            let state = FileManager.default.fileExists(atPath: path.path) ? path.path : "not fetched (loupe fetch \(m.name))"
            print("\(m.name)\n  \(m.summary)\n  \(state)")
        }
    }
}
