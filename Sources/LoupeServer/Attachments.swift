// What `loupe serve` is given besides models: sparse autoencoders (`--sae`) and tuned lenses (`--tuned-lens`),
// each read once at start and attached to the served model it was trained on, and the weight-only results
// (copying and composition scores) computed once per model and kept.

import Foundation
import LoupeInterp
import LoupeTensor
import LoupeTraining

/// The SAEs and tuned lenses of each served model, by model name.
struct Attachments: Sendable {
    struct SAE: Sendable {
        /// The folder's last path component: what the page and the API call it.
        let name: String
        let sae: SparseAutoencoder
    }
    struct Lens: Sendable {
        let name: String
        let lens: TunedLens
    }

    private(set) var saes: [String: [SAE]] = [:]
    private(set) var tunedLenses: [String: Lens] = [:]

    /// Reads every file. A value is `PATH` (attached to the model the file names: its `model_name`, or the
    /// lens's `model`) or `MODEL=PATH` (attached to that served model). A file that cannot be read, names no
    /// served model, or is a second tuned lens or a second SAE of the same name for a model is an error.
    init(saes: [String], tunedLenses: [String], models: [ExplorerModel]) throws {
        for value in saes {
            let (explicit, path) = Self.split(value, models: models)
            let sae: SparseAutoencoder
            do { sae = try SAELensFormat.read(from: URL(fileURLWithPath: path)) } catch {
                throw APIError.unprocessable("--sae \(path): \(error)")
            }
            let model = try Self.model(explicit ?? sae.config.modelName, option: "--sae", path: path, models: models)
            let name = URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent
            if self.saes[model, default: []].contains(where: { $0.name == name }) {
                throw APIError.unprocessable("--sae \(path): \(model) already has an SAE named \(name) (rename one folder)")
            }
            self.saes[model, default: []].append(SAE(name: name, sae: sae))
        }
        for value in tunedLenses {
            let (explicit, path) = Self.split(value, models: models)
            let lens: TunedLens
            do { lens = try TunedLens.load(path: path) } catch { throw APIError.unprocessable("--tuned-lens \(path): \(error)") }
            let model = try Self.model(explicit ?? lens.modelName, option: "--tuned-lens", path: path, models: models)
            if let other = self.tunedLenses[model] {
                throw APIError.unprocessable("--tuned-lens \(path): \(model) already has the tuned lens \(other.name); give one per model")
            }
            self.tunedLenses[model] = Lens(name: URL(fileURLWithPath: path).lastPathComponent, lens: lens)
        }
    }

    /// `MODEL=PATH` when MODEL is a served model's name; otherwise the whole value is a path.
    static func split(_ value: String, models: [ExplorerModel]) -> (model: String?, path: String) {
        if let eq = value.firstIndex(of: "="), models.contains(where: { $0.name == String(value[..<eq]) }) {
            return (String(value[..<eq]), String(value[value.index(after: eq)...]))
        }
        return (nil, value)
    }

    /// The served model a file belongs to: the one whose name or location is `recorded`.
    static func model(_ recorded: String?, option: String, path: String, models: [ExplorerModel]) throws -> String {
        guard let recorded else {
            throw APIError.unprocessable("\(option) \(path) does not say which model it was trained on: give \(option) MODEL=\(path)")
        }
        let standardized = URL(fileURLWithPath: recorded).standardizedFileURL.path
        if let m = models.first(where: { $0.name == recorded || $0.location == recorded
            || URL(fileURLWithPath: $0.location).standardizedFileURL.path == standardized }) {
            return m.name
        }
        throw APIError.unprocessable("\(option) \(path) was trained on '\(recorded)', which this server does not offer "
                                     + "(add --model \(recorded), or give \(option) MODEL=\(path) to attach it to a served model)")
    }
}

/// Copying and composition scores depend on the weights alone: each is computed once per model and kept.
final class WeightResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [String: Tensor] = [:]

    func value(_ key: String) -> Tensor? { lock.withLock { results[key] } }
    func store(_ key: String, _ value: Tensor) { lock.withLock { results[key] = value } }

    /// The kept result, or `compute`'s, kept.
    func value(_ key: String, compute: () throws -> Tensor) rethrows -> Tensor {
        if let v = value(key) { return v }
        let v = try compute()
        store(key, v)
        return v
    }
}
