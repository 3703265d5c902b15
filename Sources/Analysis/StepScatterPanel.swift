import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// A scatter plot whose markers grow with the training step they were measured at, so that one
/// panel shows where the points lie and in which order they got there. Frame, grid and ticks are
/// `SVGPlot.XYPanel`'s; only the markers are drawn here.
package struct StepScatterPanel: SVGPlot.Panel {
    package struct Group {
        package var color: String
        package var points: [(x: Double, y: Double, step: Int)]
    }

    package var title: String
    package var x: SVGPlot.Axis
    package var y: SVGPlot.Axis
    package var groups: [Group]

    package func render(into svg: inout SVGPlot.SVGWriter, frame: SVGPlot.Frame, id: String) {
        // Series with neither line nor markers: XYPanel draws the axes (or its "no data" note) only.
        let series = groups.map { group in SVGPlot.Series(color: group.color, points: group.points.map { ($0.x, $0.y) }, line: nil) }
        SVGPlot.XYPanel(title: title, x: x, y: y, series: series).render(into: &svg, frame: frame, id: id)
        // XYPanel's plot area.
        let margins = SVGPlot.Margins()
        let plot = SVGPlot.Frame(x: frame.x + margins.left, y: frame.y + margins.top,
                                 width: frame.width - margins.left - margins.right, height: frame.height - margins.top - margins.bottom)
        let steps = groups.flatMap { $0.points.map(\.step) }
        let first = steps.min() ?? 0, span = max((steps.max() ?? 0) - first, 1)
        for group in groups {
            // Latest first, so that the small early markers stay visible on top of the large late ones.
            for point in group.points.sorted(by: { $0.step > $1.step }) where x.accepts(point.x) && y.accepts(point.y) {
                svg.circle(plot.x + x.fraction(point.x) * plot.width, plot.y + (1 - y.fraction(point.y)) * plot.height,
                           radius: 2.2 + 3.2 * Double(point.step - first) / Double(span), fill: group.color)
            }
        }
    }
}
