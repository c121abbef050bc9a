// `loupe compare` (causal austen against bidirectional austen-mlm), the attention and head commands on a
// masked-LM, and `loupe train mlm --init-from`.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing
@testable import loupe

@Suite(.serialized) struct CompareCommandTests: RunsLoupe {
    func json(_ output: String) throws -> [String: Any] {
        let text = output.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("{") }.joined(separator: "\n")
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(output)")
    }

    @Test func comparesACausalAndABidirectionalModel() throws {
        let r = try run(["compare", "--json"])
        #expect(r.status == 0, "\(r.output)")
        let j = try json(r.output)
        let c = try #require(j["causal"] as? [String: Any]), b = try #require(j["bidirectional"] as? [String: Any])
        // " acknowledged" is token 8 of the Pride and Prejudice opening in both; the causal model reads it at 7.
        #expect(c["position"] as? Int == 8 && c["read_at"] as? Int == 7, "\(c["position"] ?? "?") \(c["read_at"] ?? "?")")
        #expect(b["position"] as? Int == 8 && b["read_at"] as? Int == 8)
        #expect((b["tokens"] as? [String])?[8] == "[MASK]" && (c["tokens"] as? [String])?[8] == " acknowledged")
        let cLater = try #require(c["later"] as? [[String: Any]]), bLater = try #require(b["later"] as? [[String: Any]])
        #expect(cLater.count == 21 && bLater.count == 21)
        #expect(cLater.allSatisfy { ($0["log_probability_change"] as? Double) == 0 })
        #expect((b["mean_absolute_later_change"] as? Double ?? 0) > 0.01)
        #expect((c["heads"] as? [[String: Any]])?.allSatisfy { ($0["to_later"] as? Double) == 0 } == true)
        #expect((c["lens"] as? [[String: Any]])?.count == 3 && (b["lens"] as? [[String: Any]])?.count == 3)
        // The text report names both models and the three parts.
        let t = try run(["compare"])
        #expect(t.status == 0)
        for part in ["causal austen and bidirectional austen-mlm", "Attention:", "Logit lens:", "Later tokens:", "mean |change|"] {
            #expect(t.output.contains(part), "missing \(part)")
        }
    }

    @Test func badComparisonsAreErrors() throws {
        let missing = try run(["compare", "--prompt", "Emma Woodhouse, handsome, clever, and rich.", "--word", " acknowledged"])
        #expect(missing.status != 0 && missing.output.contains("is not a token of the prompt"), "\(missing.output)")
        let noWord = try run(["compare", "--prompt", "Emma Woodhouse, handsome, clever, and rich."])
        #expect(noWord.status != 0 && noWord.output.contains("give --word"))
        let swapped = try run(["compare", "--causal", "austen-mlm"])
        #expect(swapped.status != 0 && swapped.output.contains("attends both ways"), "\(swapped.output)")
        let notMasked = try run(["compare", "--bidirectional", "austen"])
        #expect(notMasked.status != 0 && notMasked.output.contains("is a causal model"))
    }

    /// `attention` shows which way a masked-LM's heads look; `heads` scores them on a prompt and refuses the
    /// induction test, which measures next-token loss.
    @Test func attentionAndHeadsOnAMaskedLM() throws {
        let a = try run(["attention", "--model", "austen-mlm", "--prompt", "She was the youngest of the [MASK] daughters.", "--json"])
        #expect(a.status == 0, "\(a.output)")
        let text = a.output.split(separator: "\n").drop { !$0.hasPrefix("[") }.joined(separator: "\n")
        let heads = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        #expect(heads.count == 12)
        for h in heads {
            let sum = (h["toEarlier"] as? Double ?? 0) + (h["toSelf"] as? Double ?? 0) + (h["toLater"] as? Double ?? 0)
            #expect(abs(sum - 1) < 1e-4)
        }
        #expect(heads.contains { ($0["toLater"] as? Double ?? 0) > 0.3 })
        let table = try run(["attention", "--model", "austen-mlm", "--prompt", "She was the youngest of the [MASK] daughters."])
        #expect(table.status == 0 && table.output.contains("to later") && table.output.contains("mean offset"))
        let induction = try run(["heads", "--model", "austen-mlm"])
        #expect(induction.status != 0 && induction.output.contains("Give --prompt or --ids"), "\(induction.output)")
        let scored = try run(["heads", "--model", "austen-mlm", "--prompt", "She was the youngest of the two daughters.", "--json"])
        #expect(scored.status == 0, "\(scored.output)")
    }

    /// Patching a masked-LM is scored at the clean prompt's [MASK], and a token after it matters: putting back
    /// the clean " wife" (position 28) in layer 0 restores the clean probability of " fortune" at 20.
    @Test func patchingAMaskedLMReachesLaterTokens() throws {
        let text = "It is a truth universally acknowledged, that a single man in possession of a good [MASK], must be in want of a "
        let r = try run(["patch", "--model", "austen-mlm", "--clean", text + "wife.", "--corrupt", text + "house.",
                         "--answer", " fortune", "--metric", "prob", "--json"])
        #expect(r.status == 0, "\(r.output)")
        let j = try json(r.output)
        let grid = try #require(j["result"] as? [[Double]])
        let clean = try #require(j["clean"] as? Double), corrupted = try #require(j["corrupted"] as? Double)
        #expect(grid.count == 2 && grid[0].count == 30)
        #expect(clean - corrupted > 0.005, "clean \(clean), corrupted \(corrupted)")
        #expect(abs(grid[0][28] - clean) < 1e-5 && abs(grid[0][20] - corrupted) < 1e-5)
        let causal = try run(["path-patch", "--model", "austen-mlm", "--clean", text + "wife.", "--corrupt", text + "house.", "--answer", " fortune"])
        #expect(causal.status != 0)
    }

    /// Two steps at a negligible learning rate from austen: the blocks are austen's, attention goes both ways,
    /// and [MASK] is a new last row of the embedding and column of the unembedding, both near zero.
    @Test func trainMLMStartsFromACausalModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-mlm-init-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("text.txt")
        try String(repeating: "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition. ", count: 20)
            .write(to: corpus, atomically: true, encoding: .utf8)
        let austen = try #require(ModelRegistry.shippedPath("austen"))
        let out = dir.appendingPathComponent("run").path
        let r = try run(["train", "mlm", "--corpus", corpus.path, "--tokenizer", austen, "--init-from", austen, "--out", out,
                         "--steps", "2", "--lr", "1e-9", "--ctx", "16", "--batch", "2", "--json"])
        #expect(r.status == 0, "\(r.output)")
        let start = try ModelLoader.load(path: austen).model
        let trained = try ModelLoader.load(path: out)
        #expect(trained.model.config.bidirectional && trained.model.config.dVocab == 4097 && trained.model.config.nCtx == 256)
        #expect(trained.tokenizer?.maskID == 4096 && trained.tokenizer?.stripsLeft == [4096])
        let (d, v) = (start.config.dModel, 4096)
        let wE = trained.model.weights.wE.scalars, wU = trained.model.weights.wU.scalars
        #expect(zip(wE[0..<(v * d)], start.weights.wE.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(wE[(v * d)...].allSatisfy { abs($0) < 1e-5 })
        #expect((0..<d).allSatisfy { abs(wU[$0 * (v + 1) + v]) < 1e-5 && abs(wU[$0 * (v + 1)] - start.weights.wU.scalars[$0 * v]) < 1e-5 })
        #expect(zip(trained.model.weights.blocks[1].wQ.scalars, start.weights.blocks[1].wQ.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        // From a BERT layout, or from a model that already looks both ways: errors.
        let bert = try run(["train", "mlm", "--corpus", corpus.path, "--tokenizer", austen, "--init-from", austen, "--layout", "bert",
                            "--out", dir.appendingPathComponent("b").path, "--steps", "1"])
        #expect(bert.status != 0 && bert.output.contains("pre-ln layout"), "\(bert.output)")
        let again = try run(["train", "mlm", "--corpus", corpus.path, "--tokenizer", austen, "--init-from", out,
                             "--out", dir.appendingPathComponent("c").path, "--steps", "1"])
        #expect(again.status != 0 && again.output.contains("already attends both ways"), "\(again.output)")
    }
}
