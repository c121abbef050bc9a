// Hook points, named exactly as TransformerLens names them, produced from a typed value.

/// A hook point of `HookedTransformer`. `description` is the TransformerLens name
/// (`blocks.3.attn.hook_pattern`); `HookName(parsing:)` reads one back.
public enum HookName: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// `hook_embed` `[batch, pos, d_model]`
    case embed
    /// `hook_pos_embed` `[batch, pos, d_model]` (models with learned positional embeddings)
    case posEmbed
    /// `blocks.{l}.hook_resid_pre` `[batch, pos, d_model]`
    case residPre(Int)
    /// `blocks.{l}.ln1.hook_scale` `[batch, pos, 1]`
    case ln1Scale(Int)
    /// `blocks.{l}.ln1.hook_normalized` `[batch, pos, d_model]`
    case ln1Normalized(Int)
    /// `blocks.{l}.attn.hook_q` `[batch, pos, head_index, d_head]`
    case q(Int)
    /// `blocks.{l}.attn.hook_k` `[batch, pos, head_index, d_head]` (key-value heads under grouped-query attention)
    case k(Int)
    /// `blocks.{l}.attn.hook_v` `[batch, pos, head_index, d_head]`
    case v(Int)
    /// `blocks.{l}.attn.q_norm.hook_scale` `[batch, pos, head_index, 1]` (QK-norm models; TransformerLens
    /// flattens it to `[batch·pos·head_index, 1]`)
    case qNormScale(Int)
    /// `blocks.{l}.attn.q_norm.hook_normalized` `[batch, pos, head_index, d_head]` (QK-norm models)
    case qNormNormalized(Int)
    /// `blocks.{l}.attn.k_norm.hook_scale` `[batch, pos, kv_heads, 1]` (QK-norm models)
    case kNormScale(Int)
    /// `blocks.{l}.attn.k_norm.hook_normalized` `[batch, pos, kv_heads, d_head]` (QK-norm models)
    case kNormNormalized(Int)
    /// `blocks.{l}.attn.hook_rot_q` `[batch, pos, head_index, d_head]` (rotary models)
    case rotQ(Int)
    /// `blocks.{l}.attn.hook_rot_k` `[batch, pos, head_index, d_head]` (rotary models)
    case rotK(Int)
    /// `blocks.{l}.attn.hook_attn_scores` `[batch, head_index, query_pos, key_pos]`, scaled and masked (−∞)
    case attnScores(Int)
    /// `blocks.{l}.attn.hook_pattern` `[batch, head_index, query_pos, key_pos]`
    case pattern(Int)
    /// `blocks.{l}.attn.hook_z` `[batch, pos, head_index, d_head]`
    case z(Int)
    /// `blocks.{l}.attn.hook_result` `[batch, pos, head_index, d_model]`: each head's output; computed only when asked for
    case result(Int)
    /// `blocks.{l}.ln1_post.hook_scale` `[batch, pos, 1]`: the norm on the attention output (Gemma)
    case ln1PostScale(Int)
    /// `blocks.{l}.ln1_post.hook_normalized` `[batch, pos, d_model]`
    case ln1PostNormalized(Int)
    /// `blocks.{l}.hook_attn_out` `[batch, pos, d_model]`: what attention adds to the residual stream
    case attnOut(Int)
    /// `blocks.{l}.hook_resid_mid` `[batch, pos, d_model]`
    case residMid(Int)
    /// `blocks.{l}.ln2.hook_scale` `[batch, pos, 1]`
    case ln2Scale(Int)
    /// `blocks.{l}.ln2.hook_normalized` `[batch, pos, d_model]`
    case ln2Normalized(Int)
    /// `blocks.{l}.mlp.hook_pre` `[batch, pos, d_mlp]` (the gate pre-activation in gated MLPs)
    case mlpPre(Int)
    /// `blocks.{l}.mlp.hook_pre_linear` `[batch, pos, d_mlp]` (gated MLPs: the up projection)
    case mlpPreLinear(Int)
    /// `blocks.{l}.mlp.hook_post` `[batch, pos, d_mlp]`
    case mlpPost(Int)
    /// `blocks.{l}.ln2_post.hook_scale` `[batch, pos, 1]`: the norm on the MLP output (Gemma)
    case ln2PostScale(Int)
    /// `blocks.{l}.ln2_post.hook_normalized` `[batch, pos, d_model]`
    case ln2PostNormalized(Int)
    /// `blocks.{l}.hook_mlp_out` `[batch, pos, d_model]`: what the MLP adds to the residual stream
    case mlpOut(Int)
    /// `blocks.{l}.hook_resid_post` `[batch, pos, d_model]`
    case residPost(Int)
    /// `ln_final.hook_scale` `[batch, pos, 1]`
    case lnFinalScale
    /// `ln_final.hook_normalized` `[batch, pos, d_model]`
    case lnFinalNormalized
    /// `unembed.hook_in` `[batch, pos, d_model]` (TransformerLens 3.x): what the unembedding reads
    case unembedIn
    /// `unembed.hook_out` `[batch, pos, d_vocab]` (TransformerLens 3.x): the logits
    case unembedOut

    // BERT-style encoders (TransformerLens `HookedEncoder`).
    /// `embed.hook_embed` `[batch, pos, d_model]`: the token embeddings
    case encoderEmbed
    /// `embed.hook_pos_embed` `[batch, pos, d_model]`
    case encoderPosEmbed
    /// `embed.hook_token_type_embed` `[batch, pos, d_model]`
    case tokenTypeEmbed
    /// `embed.ln.hook_scale` `[batch, pos, 1]`: the LayerNorm of the summed embeddings
    case embedLNScale
    /// `embed.ln.hook_normalized` `[batch, pos, d_model]`
    case embedLNNormalized
    /// `hook_full_embed` `[batch, pos, d_model]`: the embeddings after their LayerNorm, block 0's input
    case fullEmbed
    /// `blocks.{l}.hook_normalized_resid_post` `[batch, pos, d_model]`: `ln2(hook_resid_post)`, the block's output
    case normalizedResidPost(Int)
    /// `mlm_head.ln.hook_scale` `[batch, pos, 1]`: the masked-LM head's LayerNorm (`ln_final`'s weights)
    case mlmLNScale
    /// `mlm_head.ln.hook_normalized` `[batch, pos, d_model]`
    case mlmLNNormalized

    /// The layer of a per-block hook; nil for `hook_embed`, `hook_pos_embed`, `ln_final.*` and `unembed.*`.
    public var layer: Int? {
        switch self {
        case .embed, .posEmbed, .lnFinalScale, .lnFinalNormalized, .unembedIn, .unembedOut, .encoderEmbed, .encoderPosEmbed,
             .tokenTypeEmbed, .embedLNScale, .embedLNNormalized, .fullEmbed, .mlmLNScale, .mlmLNNormalized: return nil
        case .residPre(let l), .ln1Scale(let l), .ln1Normalized(let l), .q(let l), .k(let l), .v(let l),
             .rotQ(let l), .rotK(let l), .attnScores(let l), .pattern(let l), .z(let l), .result(let l),
             .attnOut(let l), .residMid(let l), .ln2Scale(let l), .ln2Normalized(let l), .mlpPre(let l),
             .mlpPreLinear(let l), .mlpPost(let l), .mlpOut(let l), .residPost(let l), .qNormScale(let l),
             .qNormNormalized(let l), .kNormScale(let l), .kNormNormalized(let l), .ln1PostScale(let l),
             .ln1PostNormalized(let l), .ln2PostScale(let l), .ln2PostNormalized(let l), .normalizedResidPost(let l):
            return l
        }
    }

    /// The part of the name after `blocks.{l}.`, for per-block hooks.
    private var suffix: String {
        switch self {
        case .embed: return "hook_embed"
        case .posEmbed: return "hook_pos_embed"
        case .lnFinalScale: return "ln_final.hook_scale"
        case .lnFinalNormalized: return "ln_final.hook_normalized"
        case .unembedIn: return "unembed.hook_in"
        case .unembedOut: return "unembed.hook_out"
        case .encoderEmbed: return "embed.hook_embed"
        case .encoderPosEmbed: return "embed.hook_pos_embed"
        case .tokenTypeEmbed: return "embed.hook_token_type_embed"
        case .embedLNScale: return "embed.ln.hook_scale"
        case .embedLNNormalized: return "embed.ln.hook_normalized"
        case .fullEmbed: return "hook_full_embed"
        case .normalizedResidPost: return "hook_normalized_resid_post"
        case .mlmLNScale: return "mlm_head.ln.hook_scale"
        case .mlmLNNormalized: return "mlm_head.ln.hook_normalized"
        case .residPre: return "hook_resid_pre"
        case .ln1Scale: return "ln1.hook_scale"
        case .ln1Normalized: return "ln1.hook_normalized"
        case .q: return "attn.hook_q"
        case .k: return "attn.hook_k"
        case .v: return "attn.hook_v"
        case .qNormScale: return "attn.q_norm.hook_scale"
        case .qNormNormalized: return "attn.q_norm.hook_normalized"
        case .kNormScale: return "attn.k_norm.hook_scale"
        case .kNormNormalized: return "attn.k_norm.hook_normalized"
        case .ln1PostScale: return "ln1_post.hook_scale"
        case .ln1PostNormalized: return "ln1_post.hook_normalized"
        case .ln2PostScale: return "ln2_post.hook_scale"
        case .ln2PostNormalized: return "ln2_post.hook_normalized"
        case .rotQ: return "attn.hook_rot_q"
        case .rotK: return "attn.hook_rot_k"
        case .attnScores: return "attn.hook_attn_scores"
        case .pattern: return "attn.hook_pattern"
        case .z: return "attn.hook_z"
        case .result: return "attn.hook_result"
        case .attnOut: return "hook_attn_out"
        case .residMid: return "hook_resid_mid"
        case .ln2Scale: return "ln2.hook_scale"
        case .ln2Normalized: return "ln2.hook_normalized"
        case .mlpPre: return "mlp.hook_pre"
        case .mlpPreLinear: return "mlp.hook_pre_linear"
        case .mlpPost: return "mlp.hook_post"
        case .mlpOut: return "hook_mlp_out"
        case .residPost: return "hook_resid_post"
        }
    }

    /// The TransformerLens name.
    public var description: String {
        if let l = layer { return "blocks.\(l).\(suffix)" }
        return suffix
    }

    /// Every per-block hook kind, as a constructor from a layer, in forward order.
    static let blockKinds: [@Sendable (Int) -> HookName] = [
        HookName.residPre, HookName.ln1Scale, HookName.ln1Normalized, HookName.q, HookName.k, HookName.v,
        HookName.qNormScale, HookName.qNormNormalized, HookName.kNormScale, HookName.kNormNormalized,
        HookName.rotQ, HookName.rotK, HookName.attnScores, HookName.pattern, HookName.z, HookName.result,
        HookName.ln1PostScale, HookName.ln1PostNormalized, HookName.attnOut, HookName.residMid, HookName.ln2Scale,
        HookName.ln2Normalized, HookName.mlpPre, HookName.mlpPreLinear, HookName.mlpPost, HookName.ln2PostScale,
        HookName.ln2PostNormalized, HookName.mlpOut, HookName.residPost, HookName.normalizedResidPost,
    ]
    private static let blockSuffixes: [String: @Sendable (Int) -> HookName] = Dictionary(
        uniqueKeysWithValues: blockKinds.map { ($0(0).suffix, $0) })
    private static let globals: [String: HookName] = Dictionary(
        uniqueKeysWithValues: [HookName.embed, .posEmbed, .lnFinalScale, .lnFinalNormalized, .unembedIn, .unembedOut,
                               .encoderEmbed, .encoderPosEmbed, .tokenTypeEmbed, .embedLNScale, .embedLNNormalized, .fullEmbed,
                               .mlmLNScale, .mlmLNNormalized].map { ($0.suffix, $0) })

    /// Reads a TransformerLens hook name.
    /// - Throws: `HookError.unknownName` for anything that is not a hook name.
    public init(parsing name: String) throws {
        if let g = Self.globals[name] { self = g; return }
        let parts = name.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "blocks", let l = Int(parts[1]), l >= 0, String(l) == parts[1],
           let make = Self.blockSuffixes[String(parts[2])] {
            self = make(l)
            return
        }
        throw HookError.unknownName(name)
    }

    /// Position in the forward pass, for sorting.
    private var order: (Int, Int) {
        switch self {
        case .encoderEmbed: return (-1, 0)
        case .embed: return (-1, 0)
        case .posEmbed, .encoderPosEmbed: return (-1, 1)
        case .tokenTypeEmbed: return (-1, 2)
        case .embedLNScale: return (-1, 3)
        case .embedLNNormalized: return (-1, 4)
        case .fullEmbed: return (-1, 5)
        case .mlmLNScale: return (Int.max, 0)
        case .mlmLNNormalized: return (Int.max, 1)
        case .lnFinalScale: return (Int.max, 0)
        case .lnFinalNormalized: return (Int.max, 1)
        case .unembedIn: return (Int.max, 2)
        case .unembedOut: return (Int.max, 3)
        default:
            let idx = Self.blockKinds.firstIndex { $0(0).suffix == suffix } ?? 0
            return (layer ?? 0, idx)
        }
    }

    public static func < (a: HookName, b: HookName) -> Bool { a.order < b.order }
}

/// Problems with hooks: unknown names, hooks that change a shape, hooks that throw.
public enum HookError: Error, Equatable, CustomStringConvertible {
    case unknownName(String)
    case notInModel(name: String, reason: String)
    case shapeChanged(hook: String, expected: [Int], found: [Int])
    case noMatch(pattern: String)

    public var description: String {
        switch self {
        case .unknownName(let n):
            return "unknown hook name '\(n)': expected a TransformerLens name such as 'blocks.0.attn.hook_pattern' or 'hook_embed'"
        case .notInModel(let n, let r): return "hook '\(n)' does not exist in this model: \(r)"
        case .shapeChanged(let h, let e, let f):
            return "hook '\(h)' returned shape \(f); a hook may change values but must keep the shape \(e)"
        case .noMatch(let p): return "no hook point of this model matches '\(p)'"
        }
    }
}
