import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// A matrix of coloured cells indexed by two discrete axes, with labels on chosen rows and
/// columns: φ(i, j) over two ranks, or the rank each module type kept in each layer. The
/// discrete counterpart of `SVGPlot.HeatmapPanel`, whose cells span a continuous step axis.
package struct CellGridPanel: SVGPlot.Panel {
    package struct Cell {
        /// Position on the viridis scale, 0...1; nil draws a grey "no value" cell.
        package var level: Double?
        /// Printed in the middle of the cell when set.
        package var text: String?
    }

    package var title: String
    /// Rows from top to bottom, each with the same number of cells.
    package var cells: [[Cell]]
    /// Labels for some rows and columns, by index.
    package var rowTicks: [(index: Int, label: String)]
    package var columnTicks: [(index: Int, label: String)]
    package var rowAxisLabel = ""
    package var columnAxisLabel = ""
    /// White lines between cells, for a table of printed values.
    package var separated = false

    package static let tickSize = 10.0
    package static let missingColor = "#D9D9D9"

    /// Space between the panel's edge and the cells, on each side.
    private var margins: SVGPlot.Margins {
        let rowTickWidth = rowTicks.map { SVGPlot.SVGWriter.textWidth($0.label, size: Self.tickSize) }.max() ?? 0
        var margins = SVGPlot.Margins()
        margins.top = title.isEmpty ? 8 : 28
        margins.right = 10
        margins.bottom = columnAxisLabel.isEmpty ? 20 : 36
        margins.left = (rowAxisLabel.isEmpty ? 8 : 24) + rowTickWidth + 6
        return margins
    }

    /// The panel size that gives cells of the given size (for figures sized by their content).
    package func size(cellWidth: Double, cellHeight: Double) -> (width: Double, height: Double) {
        let margins = self.margins
        return (margins.left + margins.right + cellWidth * Double(cells.first?.count ?? 0),
                margins.top + margins.bottom + cellHeight * Double(cells.count))
    }

    package func render(into svg: inout SVGPlot.SVGWriter, frame: SVGPlot.Frame, id: String) {
        if !title.isEmpty { svg.text(title, frame.x + frame.width / 2, frame.y + 18, size: 13, anchor: .middle, weight: "600") }
        let margins = self.margins
        let plot = SVGPlot.Frame(x: frame.x + margins.left, y: frame.y + margins.top,
                                 width: frame.width - margins.left - margins.right, height: frame.height - margins.top - margins.bottom)
        let columnCount = cells.first?.count ?? 0
        guard !cells.isEmpty, columnCount > 0 else { return }
        let cellWidth = plot.width / Double(columnCount), cellHeight = plot.height / Double(cells.count)
        let textSize = min(11, cellHeight * 0.6, cellWidth * 0.4)
        for (r, row) in cells.enumerated() {
            for (c, cell) in row.enumerated() {
                let x = plot.x + Double(c) * cellWidth, y = plot.y + Double(r) * cellHeight
                // A sliver of overlap hides the anti-aliasing seams between touching cells.
                svg.rect(x, y, cellWidth + 0.4, cellHeight + 0.4, fill: cell.level.map(SVGPlot.Palette.viridis) ?? Self.missingColor,
                         stroke: separated ? "#FFFFFF" : nil)
                if let text = cell.text {
                    // Viridis is dark below about the middle of its range: white text there.
                    let onDark = (cell.level ?? 1) < 0.55
                    svg.text(text, x + cellWidth / 2, y + cellHeight / 2 + textSize * 0.35, size: textSize, anchor: .middle,
                             fill: onDark ? "#FFFFFF" : "#222222")
                }
            }
        }
        svg.rect(plot.x, plot.y, plot.width, plot.height, fill: "none", stroke: "#888888")
        for tick in rowTicks {
            svg.text(tick.label, plot.x - 5, plot.y + (Double(tick.index) + 0.5) * cellHeight + Self.tickSize * 0.35,
                     size: Self.tickSize, anchor: .end, fill: "#444444")
        }
        for tick in columnTicks {
            svg.text(tick.label, plot.x + (Double(tick.index) + 0.5) * cellWidth, plot.y + plot.height + 13,
                     size: Self.tickSize, anchor: .middle, fill: "#444444")
        }
        if !columnAxisLabel.isEmpty { svg.text(columnAxisLabel, plot.x + plot.width / 2, plot.y + plot.height + 30, size: 12, anchor: .middle) }
        if !rowAxisLabel.isEmpty { svg.text(rowAxisLabel, frame.x + 12, plot.y + plot.height / 2, size: 12, anchor: .middle, rotate: true) }
    }
}
