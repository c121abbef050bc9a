// Linear probes (Alain & Bengio 2016, "Understanding intermediate layers using linear classifier
// probes"; Belinkov 2021 for the caveats): is a property linearly readable from an activation? For every
// layer, the activation at one hook point and one token position of each labelled example is cached;
// a logistic-regression (binary or multiclass softmax) or ridge-regression probe is fit on a training
// split, and scored on the held-out split (accuracy, or R²). Where held-out accuracy rises is where the
// property becomes linearly readable — not where the model uses it.
//
// Conventions: features are standardized with the training split's mean and standard deviation; the
// logistic probe is full-batch AdamW on the tape (cross-entropy + decoupled weight decay as the L2
// penalty), the linear probe is closed-form ridge on standardized features with a centred target.
//
// Legend: n (examples), d (d_model or d_mlp), C (classes).

import Foundation
import LoupeModels
import LoupeTensor

/// One labelled example: a text, the token position to read (negative counts from the end, −1 = last),
/// and a label (a class name for logistic probes, a number for linear ones).
public struct ProbeExample: Sendable, Equatable {
    public var text: String
    public var label: String
    /// The label as a number, when it is one (true/false count as 1/0).
    public var value: Double?
    public var position: Int

    public init(text: String, label: String, value: Double? = nil, position: Int) {
        self.text = text
        self.label = label
        self.value = value ?? Double(label)
        self.position = position
    }
}

/// What is wrong with a probe dataset or request.
public enum ProbeError: Error, Equatable, CustomStringConvertible {
    case badLine(path: String, line: Int, reason: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .badLine(let p, let l, let r): return "\(p):\(l): \(r)"
        case .invalid(let m): return m
        }
    }
}

/// Which probe.
public enum ProbeKind: String, Sendable, Codable, CaseIterable {
    /// Logistic regression over the label's classes (binary or multiclass softmax); scored by accuracy.
    case logistic
    /// Ridge regression on the numeric label; scored by R².
    case linear
}

/// Reads a JSONL probe dataset: one object per line with `text` (string), `label` (string, number or
/// bool) and `position` (integer, negative from the end). Blank lines are skipped.
/// - Throws: `ProbeError.badLine` naming the line and what was expected.
public func loadProbeDataset(path: String) throws -> [ProbeExample] {
    guard let data = FileManager.default.contents(atPath: path) else { throw ProbeError.invalid("\(path): no such file or not readable") }
    guard let text = String(data: data, encoding: .utf8) else { throw ProbeError.invalid("\(path): not UTF-8 text") }
    var out: [ProbeExample] = []
    for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { continue }
        func bad(_ reason: String) -> ProbeError { .badLine(path: path, line: i + 1, reason: reason) }
        guard let object = try? JSONDecoder().decode([String: JSONScalar].self, from: Data(trimmed.utf8)) else {
            throw bad("expected a JSON object like {\"text\": \"…\", \"label\": …, \"position\": -1}")
        }
        guard case .string(let t)? = object["text"], !t.isEmpty else { throw bad("expected \"text\": a non-empty string") }
        guard case .integer(let position)? = object["position"] else {
            throw bad("expected \"position\": an integer token index (negative counts from the end), found \(object["position"]?.description ?? "nothing")")
        }
        let label: String, value: Double?
        switch object["label"] {
        case .string(let s)?: label = s; value = Double(s)
        case .bool(let b)?: label = b ? "true" : "false"; value = b ? 1 : 0
        case .integer(let i)?: label = String(i); value = Double(i)
        case .number(let x)?: label = String(x); value = x
        default: throw bad("expected \"label\": a string, number or boolean")
        }
        out.append(ProbeExample(text: t, label: label, value: value, position: position))
    }
    guard !out.isEmpty else { throw ProbeError.invalid("\(path): no examples") }
    return out
}

/// A JSON value of a probe line: what `text`, `label` and `position` may hold (objects and arrays are
/// `other`).
enum JSONScalar: Decodable, CustomStringConvertible {
    case string(String), bool(Bool), integer(Int), number(Double), null, other

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .integer(i) }
        else if let x = try? c.decode(Double.self) { self = .number(x) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .other }
    }

    var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .bool(let b): return String(b)
        case .integer(let i): return String(i)
        case .number(let x): return String(x)
        case .null: return "null"
        case .other: return "an object or array"
        }
    }
}

/// Held-out scores of one probe per layer.
public struct ProbeReport: Sendable, Codable {
    public let kind: ProbeKind
    /// The hook point, with `{l}` for the layer (`blocks.{l}.hook_resid_post`).
    public let hook: String
    public let layers: [Int]
    /// Accuracy (logistic) or R² (linear) on the held-out split, per layer.
    public let heldOut: [Float]
    /// The same on the training split.
    public let train: [Float]
    /// Class names (logistic), in index order.
    public let classes: [String]
    /// Held-out accuracy of always answering the training split's most frequent class (logistic), or 0
    /// (the R² of predicting the training mean, about 0).
    public let baseline: Float
    public let trainCount: Int
    public let heldOutCount: Int
}

/// Settings of a probe fit.
public struct ProbeSettings: Sendable {
    public var kind: ProbeKind
    /// Fraction of examples held out (chosen by a seeded shuffle).
    public var heldOutFraction: Double = 0.25
    public var seed: UInt64 = 0
    /// Logistic: full-batch AdamW steps, learning rate and weight decay (the L2 penalty).
    public var steps: Int = 200
    public var learningRate: Float = 0.05
    public var weightDecay: Float = 0.01
    /// Linear: ridge penalty λ on standardized features (`(XᵀX + λ·n·I) w = Xᵀy`).
    public var ridge: Float = 0.1

    public init(kind: ProbeKind, heldOutFraction: Double = 0.25, seed: UInt64 = 0) {
        self.kind = kind
        self.heldOutFraction = heldOutFraction
        self.seed = seed
    }
}

extension HookedTransformer {
    /// The activation at `hook(layer)` and each example's position, for every layer: `[layer]` of `[n, d]`.
    /// `tokens[i]` is example i's tokens; `positions[i]` may be negative (from the end).
    /// - Throws: `ProbeError.invalid` when a position is outside its example.
    public func probeActivations(tokens: [[Int]], positions: [Int], layers: [Int], hook: (Int) -> HookName,
                                 progress: ((Int, Int) -> Void)? = nil) throws -> [Tensor] {
        guard tokens.count == positions.count else { throw ProbeError.invalid("\(tokens.count) token rows but \(positions.count) positions") }
        let names = Set(layers.map(hook))
        for n in names { try checkHook(n) }
        var rows: [[Float]] = Array(repeating: [], count: layers.count)
        var width = 0
        for (i, (ids, p)) in zip(tokens, positions).enumerated() {
            let pos = p < 0 ? ids.count + p : p
            guard pos >= 0 && pos < ids.count else {
                throw ProbeError.invalid("example \(i + 1): position \(p) is outside its \(ids.count) tokens (0..<\(ids.count), or −\(ids.count)…−1 from the end)")
            }
            let (_, cache) = try runWithCache(.tokens([ids]), select: .names(names))
            for (k, l) in layers.enumerated() {
                guard let a = cache[hook(l)], let d = a.shape.last, a.rank == 3 else {
                    throw ProbeError.invalid("\(hook(l)) is not a [batch, pos, d] activation: probes read one vector per position")
                }
                width = d
                rows[k] += a.scalars[(pos * d)..<((pos + 1) * d)]
            }
            progress?(i + 1, tokens.count)
        }
        return rows.map { Tensor(unchecked: [tokens.count, width], $0) }
    }
}

/// Fits one probe per layer on activations `[layer]` of `[n, d]` with `examples`' labels.
/// - Throws: `ProbeError.invalid` for too few examples, a single class, or non-numeric labels of a linear probe.
public func fitProbes(activations: [Tensor], layers: [Int], hook: String, examples: [ProbeExample],
                      settings: ProbeSettings) throws -> ProbeReport {
    let n = examples.count
    guard activations.count == layers.count, activations.allSatisfy({ $0.rank == 2 && $0.shape[0] == n }) else {
        throw ProbeError.invalid("one [\(n), d] activation per layer expected")
    }
    // The split: a seeded shuffle, the last fraction held out.
    var order = Array(0..<n)
    var rng = SeededGenerator(seed: settings.seed, stream: 0x9E0BE)
    for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(i + 1)) }
    let nTest = Int((Double(n) * settings.heldOutFraction).rounded())
    guard nTest >= 1, n - nTest >= 2 else { throw ProbeError.invalid("\(n) examples are too few to split (held-out fraction \(settings.heldOutFraction))") }
    let trainIdx = Array(order[..<(n - nTest)]), testIdx = Array(order[(n - nTest)...])

    var classes: [String] = [], targets: [Double] = []
    switch settings.kind {
    case .logistic:
        classes = Array(Set(examples.map(\.label))).sorted()
        guard classes.count >= 2 else { throw ProbeError.invalid("a logistic probe needs at least two labels; all examples are \(classes.first.map { "'\($0)'" } ?? "unlabelled")") }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        targets = examples.map { Double(index[$0.label] ?? 0) }
    case .linear:
        for (i, e) in examples.enumerated() where e.value == nil {
            throw ProbeError.invalid("a linear probe needs numeric labels; example \(i + 1) has '\(e.label)'")
        }
        targets = examples.map { $0.value ?? 0 }
    }
    var baseline: Float = 0
    if settings.kind == .logistic {
        var counts = [Int](repeating: 0, count: classes.count)
        for i in trainIdx { counts[Int(targets[i])] += 1 }
        let majority = counts.indices.max { counts[$0] < counts[$1] } ?? 0
        baseline = Float(testIdx.filter { Int(targets[$0]) == majority }.count) / Float(nTest)
    }
    var heldOut: [Float] = [], train: [Float] = []
    for x in activations {
        let d = x.shape[1]
        let (xTrain, xTest) = standardized(x, train: trainIdx, test: testIdx, d: d)
        let scores: (train: Float, test: Float)
        switch settings.kind {
        case .logistic:
            scores = try logisticProbe(xTrain, trainIdx.map { Int(targets[$0]) }, xTest, testIdx.map { Int(targets[$0]) },
                                       d: d, classes: classes.count, settings: settings)
        case .linear:
            scores = try ridgeProbe(xTrain, trainIdx.map { targets[$0] }, xTest, testIdx.map { targets[$0] }, d: d, lambda: settings.ridge)
        }
        train.append(scores.train)
        heldOut.append(scores.test)
    }
    return ProbeReport(kind: settings.kind, hook: hook, layers: layers, heldOut: heldOut, train: train, classes: classes,
                       baseline: baseline, trainCount: trainIdx.count, heldOutCount: nTest)
}

/// Rows of `x [n, d]` for the two splits, standardized by the training split's statistics.
func standardized(_ x: Tensor, train: [Int], test: [Int], d: Int) -> (Tensor, Tensor) {
    var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
    for i in train { for j in 0..<d { let v = Double(x.scalars[i * d + j]); mean[j] += v; sq[j] += v * v } }
    let m = Double(train.count)
    let std = (0..<d).map { j -> Double in
        let mu = mean[j] / m
        return max((sq[j] / m - mu * mu).squareRoot(), 1e-6)
    }
    func rows(_ idx: [Int]) -> Tensor {
        Tensor(unchecked: [idx.count, d], idx.flatMap { i in (0..<d).map { j in Float((Double(x.scalars[i * d + j]) - mean[j] / m) / std[j]) } })
    }
    return (rows(train), rows(test))
}

/// Softmax regression `[n, d] · W [d, C] + b` by full-batch AdamW; accuracies on both splits.
func logisticProbe(_ xTrain: Tensor, _ yTrain: [Int], _ xTest: Tensor, _ yTest: [Int], d: Int, classes: Int,
                   settings: ProbeSettings) throws -> (train: Float, test: Float) {
    var params: [String: Tensor] = ["W": Tensor(zeros: [d, classes]), "b": Tensor(zeros: [classes])]
    var adam = try AdamW(config: AdamWConfig(learningRate: settings.learningRate, totalSteps: settings.steps,
                                             weightDecay: settings.weightDecay, clipNorm: nil))
    let x = Variable(xTrain)
    for _ in 0..<settings.steps {
        let w = Variable(params["W"]!, requiresGrad: true), b = Variable(params["b"]!, requiresGrad: true)
        let loss = try x.matmul(w).addingRow(b).crossEntropy(targets: yTrain)   // logits [n, C]
        try loss.backward()
        adam.update(&params, gradients: ["W": w.gradScalars ?? [], "b": b.gradScalars ?? []])
    }
    func accuracy(_ x: Tensor, _ y: [Int]) throws -> Float {
        let logits = try x.matmul(params["W"]!) + params["b"]!   // [n, C]
        var right = 0
        for (i, t) in y.enumerated() {
            let row = logits.scalars[(i * classes)..<((i + 1) * classes)]
            if row.indices.max(by: { row[$0] < row[$1] }) == i * classes + t { right += 1 }
        }
        return Float(right) / Float(max(y.count, 1))
    }
    return (try accuracy(xTrain, yTrain), try accuracy(xTest, yTest))
}

/// Ridge regression on standardized features with a centred target (closed form by Cholesky);
/// R² on both splits (the held-out one around the held-out mean).
func ridgeProbe(_ xTrain: Tensor, _ yTrain: [Double], _ xTest: Tensor, _ yTest: [Double], d: Int, lambda: Float) throws -> (train: Float, test: Float) {
    let n = yTrain.count
    let yMean = yTrain.reduce(0, +) / Double(n)
    // A = XᵀX + λ·n·I, r = Xᵀ(y − ȳ), in Double.
    var a = [Double](repeating: 0, count: d * d), r = [Double](repeating: 0, count: d)
    let xs = xTrain.scalars.map(Double.init)
    for i in 0..<n {
        let row = i * d, yc = yTrain[i] - yMean
        for j in 0..<d {
            let xj = xs[row + j]
            r[j] += xj * yc
            for k in j..<d { a[j * d + k] += xj * xs[row + k] }
        }
    }
    for j in 0..<d { a[j * d + j] += Double(lambda) * Double(n); for k in 0..<j { a[j * d + k] = a[k * d + j] } }
    // Cholesky A = L·Lᵀ (A is symmetric positive definite for λ > 0), then two triangular solves.
    for j in 0..<d {
        var s = a[j * d + j]
        for k in 0..<j { s -= a[j * d + k] * a[j * d + k] }
        guard s > 0 else { throw ProbeError.invalid("the ridge system is not positive definite (raise the ridge penalty)") }
        let l = s.squareRoot()
        a[j * d + j] = l
        for i in (j + 1)..<max(d, j + 1) {
            var t = a[i * d + j]
            for k in 0..<j { t -= a[i * d + k] * a[j * d + k] }
            a[i * d + j] = t / l
        }
    }
    var z = r
    for i in 0..<d { for k in 0..<i { z[i] -= a[i * d + k] * z[k] }; z[i] /= a[i * d + i] }
    var w = z
    for i in stride(from: d - 1, through: 0, by: -1) { for k in (i + 1)..<max(d, i + 1) { w[i] -= a[k * d + i] * w[k] }; w[i] /= a[i * d + i] }
    func r2(_ x: Tensor, _ y: [Double]) -> Float {
        let mean = y.reduce(0, +) / Double(max(y.count, 1))
        var sse = 0.0, sst = 0.0
        for (i, t) in y.enumerated() {
            var p = yMean
            for j in 0..<d { p += Double(x.scalars[i * d + j]) * w[j] }
            sse += (t - p) * (t - p)
            sst += (t - mean) * (t - mean)
        }
        return sst > 0 ? Float(1 - sse / sst) : 0
    }
    return (r2(xTrain, yTrain), r2(xTest, yTest))
}
