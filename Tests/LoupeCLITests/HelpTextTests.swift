// Help texts say each default once (argument-parser appends "(default: …)" itself).

import ArgumentParser
import LoupeFormats
import Testing
@testable import loupe

@Suite struct HelpTextTests {
    @Test func theModelDefaultIsSaidOnce() {
        for command in [Run.self, Generate.self, Neurons.self] as [ParsableCommand.Type] {
            let help = command.helpMessage(columns: 10_000)
            #expect(help.components(separatedBy: "default: austen").count == 2, "\(command): \(help)")
        }
    }

    /// The corpus jobs and merge document themselves with an example, and the shard option says its form.
    @Test func corpusJobsShowAnExampleAndTheShardForm() {
        for command in [NeuronIndex.self, ActivationStats.self, Merge.self] as [ParsableCommand.Type] {
            let help = command.helpMessage(columns: 10_000)
            #expect(help.contains("Example:"), "\(command)")
            if command != Merge.self { #expect(help.contains("--shard") && help.contains("1/4 … 4/4"), "\(command): \(help)") }
        }
        #expect(Loupe.configuration.version == loupeVersion && !loupeVersion.isEmpty)
    }
}
