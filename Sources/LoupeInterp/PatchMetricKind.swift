// The patching metrics by name, as the CLI's `--metric` and the explorer's `metric` field spell them.

/// A patching metric named by the user, before its tokens are known.
public enum PatchMetricKind: String, CaseIterable, Sendable, Codable {
    /// `logit[answer] − logit[wrong]`.
    case logitDiff = "logit-diff"
    /// The logit difference scaled so that the corrupted run is 0 and the clean run 1.
    case normalizedLogitDiff = "normalized-logit-diff"
    /// The probability of the answer.
    case prob
    /// The negative log-probability of the answer.
    case loss

    /// The names, for help texts and error messages: "logit-diff, normalized-logit-diff, prob or loss".
    public static var spelledOut: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
    }

    /// Whether the metric compares two tokens (and so needs a wrong one).
    public var needsWrongToken: Bool { self == .logitDiff || self == .normalizedLogitDiff }

    /// Whether results are reported normalized (`PatchResult.normalized`).
    public var isNormalized: Bool { self == .normalizedLogitDiff }

    /// The metric for these tokens.
    /// - Throws: `InterpError.invalid` when a logit difference has no wrong token.
    public func metric(answer: Int, wrong: Int?) throws -> PatchMetric {
        switch self {
        case .logitDiff, .normalizedLogitDiff:
            guard let wrong else { throw InterpError.invalid("the metric \(rawValue) needs a wrong token") }
            return .logitDifference(answer: answer, wrong: wrong)
        case .prob: return .probability(answer)
        case .loss: return .loss(answer)
        }
    }
}
