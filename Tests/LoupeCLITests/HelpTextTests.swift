// Help texts say each default once (argument-parser appends "(default: …)" itself).

import ArgumentParser
import Testing
@testable import loupe

@Suite struct HelpTextTests {
    @Test func theModelDefaultIsSaidOnce() {
        for command in [Run.self, Generate.self, Neurons.self] as [ParsableCommand.Type] {
            let help = command.helpMessage(columns: 10_000)
            #expect(help.components(separatedBy: "default: austen").count == 2, "\(command): \(help)")
        }
    }
}
