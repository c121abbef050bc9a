import LoupeModels
import Testing

@Suite struct HookNameTests {
    @Test(arguments: [
        (HookName.embed, "hook_embed"), (.posEmbed, "hook_pos_embed"), (.residPre(0), "blocks.0.hook_resid_pre"),
        (.ln1Scale(3), "blocks.3.ln1.hook_scale"), (.ln1Normalized(3), "blocks.3.ln1.hook_normalized"),
        (.q(11), "blocks.11.attn.hook_q"), (.k(2), "blocks.2.attn.hook_k"), (.v(2), "blocks.2.attn.hook_v"),
        (.rotQ(1), "blocks.1.attn.hook_rot_q"), (.rotK(1), "blocks.1.attn.hook_rot_k"),
        (.attnScores(4), "blocks.4.attn.hook_attn_scores"), (.pattern(4), "blocks.4.attn.hook_pattern"),
        (.z(5), "blocks.5.attn.hook_z"), (.result(5), "blocks.5.attn.hook_result"),
        (.attnOut(6), "blocks.6.hook_attn_out"), (.residMid(6), "blocks.6.hook_resid_mid"),
        (.ln2Scale(7), "blocks.7.ln2.hook_scale"), (.ln2Normalized(7), "blocks.7.ln2.hook_normalized"),
        (.mlpPre(8), "blocks.8.mlp.hook_pre"), (.mlpPreLinear(8), "blocks.8.mlp.hook_pre_linear"),
        (.mlpPost(8), "blocks.8.mlp.hook_post"), (.mlpOut(9), "blocks.9.hook_mlp_out"),
        (.residPost(10), "blocks.10.hook_resid_post"), (.lnFinalScale, "ln_final.hook_scale"),
        (.lnFinalNormalized, "ln_final.hook_normalized"), (.unembedIn, "unembed.hook_in"),
        (.unembedOut, "unembed.hook_out"),
    ])
    func roundTrip(hook: HookName, name: String) throws {
        #expect(hook.description == name)
        #expect(try HookName(parsing: name) == hook)
    }

    @Test(arguments: ["", "hook_pattern", "blocks.0.attn.hook_patern", "blocks.x.hook_resid_pre", "blocks.-1.hook_resid_pre",
                      "blocks.01.hook_resid_pre", "blocks.0.hook_resid_pre.extra", "blocks..hook_resid_pre", "ln_final.hook_scale "])
    func unknownNamesThrow(name: String) {
        #expect(throws: HookError.unknownName(name)) { try HookName(parsing: name) }
    }

    @Test func forwardOrder() {
        let names: [HookName] = [.lnFinalScale, .residPost(0), .pattern(1), .embed, .residPre(1), .q(0)]
        #expect(names.sorted() == [.embed, .q(0), .residPost(0), .residPre(1), .pattern(1), .lnFinalScale])
    }
}
