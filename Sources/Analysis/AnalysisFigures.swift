import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// The figures of the LoRA and DoRA analyses, as complete SVG documents built from `SVGPlot`.
public enum AnalysisFigures {
    /// φ(i, j) heatmaps in a grid, one per module or layer (LoRA paper, Figure 3): i = 1…r₁ down
    /// the rows, j = 1…r₂ along the columns, viridis over [0, 1] with one shared colour bar.
    public static func subspaceHeatmaps(title: String, panels: [(label: String, phi: Matrix)], columns: Int) -> String {
        let grids = panels.map { panel in
            CellGridPanel(title: panel.label,
                          cells: (0..<panel.phi.rows).map { i in
                              (0..<panel.phi.cols).map { j in CellGridPanel.Cell(level: Double(panel.phi[i, j])) }
                          },
                          rowTicks: rankTicks(panel.phi.rows), columnTicks: rankTicks(panel.phi.cols),
                          rowAxisLabel: "i", columnAxisLabel: "j")
        }
        return SVGPlot.Figure(title: title, panels: grids, columns: columns, panelWidth: 260, panelHeight: 210,
                              colorBar: SVGPlot.ColorBar(label: "φ(i, j)", ticks: [(0, "0"), (0.5, "0.5"), (1, "1")])).svg
    }

    /// One heatmap of integers with each value printed in its cell, e.g. the rank a module type
    /// kept in each layer; nil is a grey "–". `values` is [row][column], coloured over 0...`maximum`.
    public static func rankHeatmap(title: String, rowLabels: [String], columnLabels: [String], values: [[Int?]], maximum: Int) -> String {
        precondition(values.count == rowLabels.count && values.allSatisfy { $0.count == columnLabels.count },
                     "rankHeatmap: values must be \(rowLabels.count) rows of \(columnLabels.count) columns")
        let cells = values.map { row in
            row.map { value in
                CellGridPanel.Cell(level: value.map { maximum > 0 ? Double($0) / Double(maximum) : 0 }, text: value.map(String.init) ?? "–")
            }
        }
        let grid = CellGridPanel(title: "", cells: cells, rowTicks: Array(zip(rowLabels.indices, rowLabels)),
                                 columnTicks: Array(zip(columnLabels.indices, columnLabels)), separated: true)
        let widestColumnLabel = columnLabels.map { SVGPlot.SVGWriter.textWidth($0, size: CellGridPanel.tickSize) }.max() ?? 0
        let size = grid.size(cellWidth: max(44, widestColumnLabel + 10), cellHeight: 26)
        // Never narrower than the colour bar above the grid.
        return SVGPlot.Figure(title: title, panels: [grid], columns: 1, panelWidth: max(size.width, 380), panelHeight: size.height,
                              colorBar: SVGPlot.ColorBar(label: "rank", ticks: [(0, "0"), (0.5, SVGPlot.Axis.format(Double(maximum) / 2)),
                                                                                (1, String(maximum))])).svg
    }

    /// ΔD against ΔM (DoRA paper, Figure 2): one colour per series (e.g. FT, LoRA, DoRA), each
    /// point one module at one step, markers growing with the step; the legend gives each
    /// series' Pearson correlation.
    public static func magnitudeDirectionScatter(title: String,
                                                 series: [(label: String, points: [(deltaD: Double, deltaM: Double, step: Int)], correlation: Double?)]) -> String {
        let points = series.flatMap(\.points)
        let panel = StepScatterPanel(
            title: "one point per module and step; larger markers are later steps",
            x: SVGPlot.Axis(label: "ΔD (mean 1 − cos per output feature)", scale: .linear, covering: points.map(\.deltaD)),
            y: SVGPlot.Axis(label: "ΔM (mean |change of row norm|)", scale: .linear, covering: points.map(\.deltaM)),
            groups: series.indices.map { index in
                StepScatterPanel.Group(color: SVGPlot.Palette.categorical(index), points: series[index].points.map { ($0.deltaD, $0.deltaM, $0.step) })
            })
        let legend = series.indices.map { index in
            let correlation = series[index].correlation.map { String(format: "%.2f", $0) } ?? "n/a"
            return SVGPlot.LegendEntry("\(series[index].label) · Pearson r = \(correlation)", color: SVGPlot.Palette.categorical(index), mark: .lineAndMarker)
        }
        return SVGPlot.Figure(title: title, panels: [panel], columns: 1, panelWidth: 620, panelHeight: 440, legend: legend).svg
    }

    /// Normalised spectra σᵢ/σ₁ against i on a log y axis, one line per series (e.g. ΔW of each
    /// variant): how quickly an update's energy falls off past its top directions. Zero
    /// singular values cannot sit on a log axis and end a line early.
    public static func spectra(title: String, series: [(label: String, singularValues: [Float])]) -> String {
        let lines = series.indices.map { index in
            let values = series[index].singularValues.map(Double.init)
            let largest = values.max() ?? 0
            return SVGPlot.Series(color: SVGPlot.Palette.categorical(index),
                                  points: largest > 0 ? values.enumerated().map { (Double($0.offset + 1), $0.element / largest) } : [])
        }
        let count = series.map(\.singularValues.count).max() ?? 0
        let panel = SVGPlot.XYPanel(title: "each line normalised by its largest singular value",
                                    x: SVGPlot.Axis(label: "index i", exactly: 1...Double(max(count, 2))),
                                    y: SVGPlot.Axis(label: "σᵢ / σ₁", scale: .log10, covering: lines.flatMap { $0.points.map(\.y) }),
                                    series: lines, emptyNote: "no nonzero singular values")
        let legend = series.indices.map { SVGPlot.LegendEntry(series[$0].label, color: SVGPlot.Palette.categorical($0), mark: .line(dashed: false)) }
        return SVGPlot.Figure(title: title, panels: [panel], columns: 1, panelWidth: 640, panelHeight: 420, legend: legend).svg
    }

    /// Tick positions (0-based) and labels for a rank axis of length n: 1, the powers of two from
    /// 8 below n, and n, the ranks LoRA's Figure 3 compares.
    private static func rankTicks(_ n: Int) -> [(index: Int, label: String)] {
        guard n > 0 else { return [] }
        var ranks = [1]
        var power = 8
        while power < n {
            ranks.append(power)
            power *= 2
        }
        if n > 1 { ranks.append(n) }
        return ranks.map { ($0 - 1, String($0)) }
    }
}
