// Hooks that read or replace activations, and the cache that `runWithCache` fills.

import LoupeTensor

/// A hook: sees an activation under its hook name and may change its values in place (not its shape).
/// The same convention as the tape's `GradientHookFunction`: `{ z, _ in z[.all, .all, 3] = 0 }`.
public typealias HookFunction = @Sendable (_ activation: inout Tensor, _ hook: HookName) throws -> Void

/// Hook functions by hook point, run in the order they were added. A dictionary literal makes one:
///
///     let hooks: Hooks = [
///         .z(5): { z, _ in z[.all, .all, 1] = 0 },          // ablate head 5.1
///         .residPre(3): Hooks.add(direction, scale: 4),     // steer
///     ]
public struct Hooks: Sendable, ExpressibleByDictionaryLiteral {
    public private(set) var functions: [HookName: [HookFunction]] = [:]

    public init() {}

    public init(dictionaryLiteral elements: (HookName, HookFunction)...) {
        for (n, f) in elements { add(n, f) }
    }

    /// Hooks from a list of (name, function) pairs.
    public init(_ pairs: [(HookName, HookFunction)]) {
        for (n, f) in pairs { add(n, f) }
    }

    /// Adds a hook at `name`.
    public mutating func add(_ name: HookName, _ function: @escaping HookFunction) {
        functions[name, default: []].append(function)
    }

    public var isEmpty: Bool { functions.isEmpty }

    /// A hook that replaces the activation with `tensor` (which must have the activation's shape).
    public static func replace(with tensor: Tensor) -> HookFunction {
        { activation, hook in
            guard activation.shape == tensor.shape else {
                throw HookError.shapeChanged(hook: hook.description, expected: activation.shape, found: tensor.shape)
            }
            activation = tensor
        }
    }

    /// A hook that sets the activation to zero (zero-ablation).
    public static let zeroAblate: HookFunction = { activation, _ in
        activation = Tensor(zeros: activation.shape)
    }

    /// A hook that adds `vector` (the activation's last dimension) at every position, times `scale` (steering).
    public static func add(_ vector: Tensor, scale: Float = 1) -> HookFunction {
        { activation, hook in
            guard let last = activation.shape.last, vector.shape == [last] else {
                throw HookError.shapeChanged(hook: hook.description, expected: [activation.shape.last ?? 0], found: vector.shape)
            }
            activation = try activation + vector * scale
        }
    }
}

/// Which hook points `runWithCache` stores.
public enum CacheSelection: Sendable {
    /// Every hook point the forward pass runs (`hook_result` only when `ForwardOptions.useAttnResult`).
    case all
    /// Exactly these.
    case names(Set<HookName>)
    /// Those a predicate accepts.
    case filter(@Sendable (HookName) -> Bool)

    func contains(_ name: HookName) -> Bool {
        switch self {
        case .all: return true
        case .names(let s): return s.contains(name)
        case .filter(let f): return f(name)
        }
    }
}

/// Activations stored by `runWithCache`, under TransformerLens hook names, with the batch dimension.
public struct ActivationCache: Sendable {
    public internal(set) var activations: [HookName: Tensor] = [:]

    public init(_ activations: [HookName: Tensor] = [:]) { self.activations = activations }

    public subscript(_ name: HookName) -> Tensor? { activations[name] }

    /// An activation by its TransformerLens name.
    /// - Throws: `HookError.unknownName` for a name that is not a hook name, `.notInModel` when it was not cached.
    public func get(_ name: String) throws -> Tensor {
        let hook = try HookName(parsing: name)
        guard let t = activations[hook] else {
            throw HookError.notInModel(name: name, reason: "it was not run or not cached")
        }
        return t
    }

    /// An activation by its hook point.
    /// - Throws: `HookError.notInModel` when it was not cached.
    public func get(_ name: HookName) throws -> Tensor {
        guard let t = activations[name] else {
            throw HookError.notInModel(name: name.description, reason: "it was not run or not cached")
        }
        return t
    }

    /// The cached names in forward order.
    public var names: [HookName] { activations.keys.sorted() }

    /// Total size of the cached activations in bytes.
    public var byteCount: Int { activations.values.reduce(0) { $0 + $1.count * 4 } }
}

/// Runs hooks and fills the cache during one forward pass.
struct HookRunner {
    let hooks: [HookName: [HookFunction]]
    let selection: CacheSelection?
    var cache = ActivationCache()

    /// Whether anything happens at `name`; callers skip building an activation that nobody reads.
    @inline(__always)
    func wants(_ name: HookName) -> Bool {
        hooks[name] != nil || (selection?.contains(name) ?? false)
    }

    /// Whether `hook_result` must be computed: a hook or an explicit cache name asks for it
    /// (`.all` and filters include it only under `ForwardOptions.useAttnResult`, as in TransformerLens).
    func wantsResult(_ layer: Int) -> Bool {
        if hooks[.result(layer)] != nil { return true }
        if case .names(let s) = selection { return s.contains(.result(layer)) }
        return false
    }

    /// Gives `buffer` (of `shape`) to the hooks at `name`, then stores it in the cache if selected.
    mutating func visit(_ name: HookName, _ buffer: inout [Float], shape: [Int]) throws {
        if let fns = hooks[name] {
            var t = Tensor(zeros: [0])
            swap(&t.scalars, &buffer)
            t = try t.reshaped(shape)
            for f in fns {
                try f(&t, name)
                guard t.shape == shape, t.count == shape.product else {
                    throw HookError.shapeChanged(hook: name.description, expected: shape, found: t.shape)
                }
            }
            swap(&t.scalars, &buffer)
        }
        if let selection, selection.contains(name) {
            cache.activations[name] = Tensor(unchecked: shape, buffer)
        }
    }
}

/// A progress callback of long work: `(done, total)`. Sendable, since sweeps report from worker threads
/// (one report at a time).
public typealias ProgressHandler = @Sendable (_ done: Int, _ total: Int) -> Void
