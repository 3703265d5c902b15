import Testing
@testable import LoRABenchPlotting

@Suite("SVG plot axes and palettes")
struct SVGPlotTests {
    @Test("linear ticks are round numbers that cover the data")
    func linearTicks() {
        let axis = SVGPlot.Axis(label: "loss", scale: .linear, covering: [0.13, 0.87])
        #expect(axis.ticks.first! <= 0.13 && axis.ticks.last! >= 0.87)
        #expect(axis.ticks.map(SVGPlot.Axis.format) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"])
        #expect(abs(axis.fraction(axis.domain.lowerBound)) < 1e-12 && abs(axis.fraction(axis.domain.upperBound) - 1) < 1e-12)
    }

    @Test("log axes tick on the given ranks or on powers of ten, and put equal ratios at equal distances")
    func logTicks() {
        let ranks = SVGPlot.Axis(label: "rank", scale: .log2, covering: [4, 64], ticks: [4, 8, 16, 64])
        #expect(ranks.ticks == [4, 8, 16, 64])
        #expect(abs((ranks.fraction(8) - ranks.fraction(4)) - (ranks.fraction(16) - ranks.fraction(8))) < 1e-12)
        let parameters = SVGPlot.Axis(label: "parameters", scale: .log10, covering: [1_500, 250_000])
        // Two powers of ten are too few ticks, so the 2× and 5× multiples join them.
        #expect(parameters.ticks.map(SVGPlot.Axis.format) == ["2k", "5k", "10k", "20k", "50k", "100k", "200k"])
        let narrow = SVGPlot.Axis(label: "loss", scale: .log10, covering: [0.02, 0.3])
        #expect(narrow.ticks.map(SVGPlot.Axis.format) == ["0.02", "0.05", "0.1", "0.2"])
        #expect(!parameters.accepts(0) && !parameters.accepts(-1))
    }

    @Test("the rank palette has one distinct colour per rank, darker for larger ranks")
    func palettes() {
        let colors = SVGPlot.Palette.sequential(4)
        #expect(Set(colors).count == 4)
        func brightness(_ hex: String) -> Int {
            let value = Int(hex.dropFirst(), radix: 16)!
            return (value >> 16) + (value >> 8 & 0xFF) + (value & 0xFF)
        }
        #expect(colors.map(brightness) == colors.map(brightness).sorted(by: >))
        #expect(SVGPlot.Palette.categorical(0) != SVGPlot.Palette.categorical(1))
    }
}
