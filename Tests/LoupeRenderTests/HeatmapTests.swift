import Foundation
import LoupeRender
import Testing

@Suite struct HeatmapTests {
    @Test func cellsColoursAndEscaping() throws {
        let map = try Heatmap(values: [-2, 0, 1, 2], rows: 2, columns: 2, rowLabels: ["L0", "L<1>"],
                              columnLabels: ["\"a\"", "b&c"], title: "effect", scale: .diverging)
        let svg = map.svg
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.components(separatedBy: "</title></rect>").count - 1 == 4)
        // The legend: 40 colour steps from one end of the scale to the other, labelled -2, 0 and 2.
        let legend = svg.components(separatedBy: "<g class=\"legend\">")[1]
        #expect(legend.components(separatedBy: "<rect ").count - 1 == 40)
        #expect(legend.contains("fill=\"#2166ac\"") && legend.contains("fill=\"#b2182b\"") && legend.contains(">-2</text>") && legend.contains(">2</text>"))
        #expect(map.color(0) == "#ffffff" && map.color(2) == "#b2182b" && map.color(-2) == "#2166ac")
        #expect(map.color(1) == String(format: "#%02x%02x%02x", 217, 140, 149))
        #expect(svg.contains("L&lt;1&gt;") && svg.contains("&quot;a&quot;") && svg.contains("b&amp;c"))
        #expect(!svg.contains("L<1>"))
        #expect(svg.contains("<title>L0 × &quot;a&quot;: -2</title>"))
        let sequential = try Heatmap(values: [0, 0.5, 1], rows: 1, columns: 3, rowLabels: ["x"], columnLabels: ["a", "b", "c"],
                                     title: "p", scale: .sequential)
        #expect(sequential.color(0) == "#ffffff" && sequential.color(1) == "#2166ac")
        #expect(sequential.color(.nan) == "#cccccc")
    }

    @Test func badShapes() {
        #expect(throws: RenderError.self) { try Heatmap(values: [1, 2, 3], rows: 2, columns: 2, rowLabels: ["a", "b"], columnLabels: ["c", "d"], title: "") }
        #expect(throws: RenderError.self) { try Heatmap(values: [1], rows: 1, columns: 1, rowLabels: [], columnLabels: ["c"], title: "") }
        let map = try? Heatmap(values: [1], rows: 1, columns: 1, rowLabels: ["a"], columnLabels: ["b"], title: "t")
        #expect(throws: RenderError.self) { try map?.write(to: "/nonexistent-dir/x.svg") }
    }
}
