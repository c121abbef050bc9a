import ArgumentParser
import Foundation
import LoupeModels

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a known model into Loupe's cache (~/.cache/loupe, or $LOUPE_HOME), checked by sha256.")

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
    static let configuration = CommandConfiguration(abstract: "List the models Loupe knows by name, and which are cached.")

    func run() throws {
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
