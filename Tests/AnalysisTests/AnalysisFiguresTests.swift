import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import LoRABenchKernels
@testable import LoRABenchVariants
@testable import LoRABenchAnalysis
import LoRABenchTestSupport
import Testing

extension AnalysisTests {
    /// Each figure is one well-formed SVG document with its title, labels and cells.
    @Suite struct AnalysisFiguresTests {
        /// Parses `svg` as XML, checks that it is one `<svg>` document, and returns it.
        static func document(_ svg: String) throws -> XMLDocument {
            #expect(svg.hasPrefix("<?xml") || svg.hasPrefix("<svg"))
            #expect(svg.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("</svg>"))
            let document = try XMLDocument(xmlString: svg)
            #expect(document.rootElement()?.name == "svg")
            return document
        }

        static func elements(_ name: String, in document: XMLDocument) throws -> [XMLNode] {
            try document.nodes(forXPath: "//*[local-name()='\(name)']")
        }

        static func texts(in document: XMLDocument) throws -> [String] {
            try elements("text", in: document).compactMap(\.stringValue)
        }

        @Test func subspaceHeatmapsDrawEveryCellOfEveryPanel() throws {
            var rng = SplitMix64(seed: 12)
            let shapes = [(8, 64), (8, 32), (4, 64)]
            let panels = shapes.enumerated().map { index, shape in
                (label: "layer \(index) <q>", phi: Matrix.uniform(shape.0, shape.1, bound: 1, using: &rng))
            }
            let svg = AnalysisFigures.subspaceHeatmaps(title: "φ of A_r=8 & A_r=64", panels: panels, columns: 2)
            let document = try Self.document(svg)
            #expect(svg.contains("φ of A_r=8 &amp; A_r=64") && svg.contains("layer 0 &lt;q&gt;"))
            #expect(try Self.elements("rect", in: document).count >= shapes.reduce(0) { $0 + $1.0 * $1.1 })
            let texts = try Self.texts(in: document)
            #expect(texts.contains("φ of A_r=8 & A_r=64"))
            for label in ["layer 1 <q>", "layer 2 <q>", "1", "8", "16", "32", "64", "i", "j", "φ(i, j)"] {
                #expect(texts.contains(label), "missing text \(label)")
            }
        }

        @Test func rankHeatmapPrintsEveryValueAndMarksMissingOnes() throws {
            let layers = (0..<6).map { "layer \($0)" }
            let modules = ["query", "key", "value", "output.dense"]
            let values: [[Int?]] = layers.indices.map { layer in modules.indices.map { module in (layer + module) % 5 == 0 ? nil : layer + 2 * module } }
            let svg = AnalysisFigures.rankHeatmap(title: "Kept rank <per module>", rowLabels: layers, columnLabels: modules, values: values, maximum: 12)
            let document = try Self.document(svg)
            #expect(svg.contains("Kept rank &lt;per module&gt;"))
            #expect(try Self.elements("rect", in: document).count >= layers.count * modules.count)
            let texts = try Self.texts(in: document)
            #expect(texts.filter { $0 == "–" }.count == values.joined().filter { $0 == nil }.count)
            for value in values.joined().compactMap({ $0 }) { #expect(texts.contains(String(value))) }
            for label in layers + modules { #expect(texts.contains(label), "missing label \(label)") }
        }

        @Test func scatterDrawsOneMarkerPerPointAndShowsEachCorrelation() throws {
            typealias Point = (deltaD: Double, deltaM: Double, step: Int)
            let lora = (0..<10).map { (index: Int) -> Point in (Double(index + 1) / 1000, Double(index + 1) / 50, 100 * (index % 5)) }
            let dora = (0..<8).map { (index: Int) -> Point in (Double(index + 1) / 1000, 0.2 - Double(index) / 50, 100 * (index % 4)) }
            let svg = AnalysisFigures.magnitudeDirectionScatter(title: "ΔM vs ΔD & steps", series: [
                (label: "LoRA", points: lora, correlation: 0.93),
                (label: "DoRA", points: dora, correlation: -0.62),
                (label: "FT <none>", points: [], correlation: nil),
            ])
            let document = try Self.document(svg)
            #expect(svg.contains("ΔM vs ΔD &amp; steps"))
            let texts = try Self.texts(in: document)
            #expect(texts.contains("LoRA · Pearson r = 0.93"))
            #expect(texts.contains("DoRA · Pearson r = -0.62"))
            #expect(texts.contains("FT <none> · Pearson r = n/a"))
            // Markers are the scatter's circles; the legend draws one more per series.
            #expect(try Self.elements("circle", in: document).count == lora.count + dora.count + 3)
        }

        @Test func spectraDrawOneLinePerSeries() throws {
            let svg = AnalysisFigures.spectra(title: "σ(ΔW) <q>", series: [
                (label: "LoRA r=8", singularValues: [4, 2, 1, 0.5, 0.01, 0, 0, 0]),
                (label: "DoRA r=8", singularValues: [3, 2.5, 2, 1.5, 1, 0.5, 0.25, 0.125]),
            ])
            let document = try Self.document(svg)
            #expect(svg.contains("σ(ΔW) &lt;q&gt;"))
            let lines = try Self.elements("path", in: document)
            #expect(lines.count == 2)
            let texts = try Self.texts(in: document)
            for label in ["LoRA r=8", "DoRA r=8", "σᵢ / σ₁", "index i"] { #expect(texts.contains(label), "missing \(label)") }
        }

        @Test func emptyInputsStillGiveDocuments() throws {
            _ = try Self.document(AnalysisFigures.subspaceHeatmaps(title: "none", panels: [], columns: 3))
            _ = try Self.document(AnalysisFigures.rankHeatmap(title: "none", rowLabels: [], columnLabels: [], values: [], maximum: 0))
            _ = try Self.document(AnalysisFigures.magnitudeDirectionScatter(title: "none", series: []))
            _ = try Self.document(AnalysisFigures.spectra(title: "none", series: [(label: "zero", singularValues: [0, 0])]))
        }
    }
}
