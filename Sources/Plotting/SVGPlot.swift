import Foundation

// A small SVG plotting kit for the report: axes with nice ticks (linear, log2, log10), line and
// error-bar series with bands, a heatmap panel, and a figure that lays panels out in a grid
// under a shared legend. Output is plain SVG 1.1 text that browsers and XML parsers both accept.

/// The plotting primitives, in one namespace so that generic names (Axis, Figure, Series) stay
/// out of the module's top level.
public enum SVGPlot {
    /// Colours as CSS hex strings.
    public enum Palette {
        /// Okabe–Ito, which stays distinguishable under the common colour-vision deficiencies; its
        /// yellow is left out because it vanishes on white. For categories such as variants.
        public static let categorical = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999999"]

        public static func categorical(_ index: Int) -> String { categorical[index % categorical.count] }

        /// Viridis at t in [0, 1] (dark purple to yellow): the heatmap scale.
        public static func viridis(_ t: Double) -> String {
            interpolate([(68, 1, 84), (72, 36, 117), (65, 68, 135), (53, 95, 141), (42, 120, 142), (33, 145, 140),
                         (34, 168, 132), (68, 191, 112), (122, 209, 81), (189, 223, 38), (253, 231, 37)], at: t)
        }

        /// Plasma at t in [0, 1] (dark blue through magenta to yellow).
        public static func plasma(_ t: Double) -> String {
            interpolate([(13, 8, 135), (65, 4, 157), (106, 0, 168), (143, 13, 164), (177, 42, 144), (204, 71, 120),
                         (225, 100, 98), (242, 132, 75), (252, 166, 54), (252, 206, 37), (240, 249, 33)], at: t)
        }

        /// `count` ordered colours for discrete levels such as ranks: light for the first, dark
        /// for the last (more capacity, darker line). Plasma rather than viridis, because its hue
        /// changes faster and four thin lines stay apart; its pale yellow end is skipped so that
        /// lines stay visible on white.
        public static func sequential(_ count: Int) -> [String] {
            guard count > 1 else { return [plasma(0.4)] }
            return (0..<count).map { plasma(0.82 - 0.82 * Double($0) / Double(count - 1)) }
        }

        /// The colour at t in [0, 1] between evenly spaced RGB samples.
        private static func interpolate(_ stops: [(Double, Double, Double)], at t: Double) -> String {
            let position = min(max(t.isFinite ? t : 0, 0), 1) * Double(stops.count - 1)
            let lower = min(Int(position), stops.count - 2)
            let fraction = position - Double(lower)
            let (a, b) = (stops[lower], stops[lower + 1])
            func channel(_ x: Double, _ y: Double) -> Int { Int((x + (y - x) * fraction).rounded()) }
            return String(format: "#%02X%02X%02X", channel(a.0, b.0), channel(a.1, b.1), channel(a.2, b.2))
        }
    }

    /// One plot axis: how values map to [0, 1] along it, its ticks and its label.
    public struct Axis {
        public enum Scale { case linear, log2, log10 }

        public let label: String
        public let scale: Scale
        /// The visible range, in data units.
        public let domain: ClosedRange<Double>
        public let ticks: [Double]

        /// An axis covering `values`. Linear axes round out to nice ticks; log axes put ticks on
        /// powers of their base (or on `ticks` when given, e.g. exactly the ranks that were run)
        /// and pad a little so that markers do not sit on the frame. Non-positive values are
        /// ignored on log axes, which cannot show them.
        public init(label: String, scale: Scale, covering values: [Double], ticks explicit: [Double]? = nil) {
            self.label = label
            self.scale = scale
            let usable = values.filter { $0.isFinite && (scale == .linear || $0 > 0) }
            var low = usable.min() ?? (scale == .linear ? 0 : 1)
            var high = usable.max() ?? (scale == .linear ? 1 : 10)
            switch scale {
            case .linear:
                if low == high { (low, high) = low == 0 ? (-1, 1) : (low - abs(low) / 10, high + abs(high) / 10) }
                let nice = explicit ?? Self.niceTicks(low, high)
                ticks = nice
                domain = min(low, nice.first ?? low)...max(high, nice.last ?? high)
            case .log2, .log10:
                if low == high { (low, high) = (low / 2, high * 2) }
                let logLow = Self.log(low, scale), logHigh = Self.log(high, scale)
                let pad = max(0.06 * (logHigh - logLow), scale == .log2 ? 0.3 : 0.1)
                domain = Self.power(logLow - pad, scale)...Self.power(logHigh + pad, scale)
                ticks = explicit ?? Self.logTicks(domain.lowerBound, domain.upperBound, scale)
            }
        }

        /// A linear axis over exactly `domain`, not rounded out to ticks: for steps, where the data
        /// should reach the frame at both ends.
        public init(label: String, exactly domain: ClosedRange<Double>) {
            self.label = label
            scale = .linear
            let (low, high) = domain.lowerBound < domain.upperBound ? (domain.lowerBound, domain.upperBound) : (domain.lowerBound - 1, domain.upperBound + 1)
            self.domain = low...high
            let slack = 1e-9 * (high - low)
            ticks = Self.niceTicks(low, high).filter { $0 >= low - slack && $0 <= high + slack }
        }

        /// Where `value` falls along the axis: 0 at the domain's start, 1 at its end.
        public func fraction(_ value: Double) -> Double {
            switch scale {
            case .linear:
                return (value - domain.lowerBound) / (domain.upperBound - domain.lowerBound)
            case .log2, .log10:
                let low = Self.log(domain.lowerBound, scale), high = Self.log(domain.upperBound, scale)
                return (Self.log(value, scale) - low) / (high - low)
            }
        }

        /// Whether `value` can be drawn on this axis at all.
        public func accepts(_ value: Double) -> Bool { value.isFinite && (scale == .linear || value > 0) }

        /// Ticks at 1, 2 or 5 × 10^k, about `target` of them, covering [low, high].
        package static func niceTicks(_ low: Double, _ high: Double, target: Double = 5) -> [Double] {
            let raw = (high - low) / target
            let magnitude = pow(10, (log10(raw)).rounded(.down))
            let ratio = raw / magnitude
            let step = (ratio < 1.5 ? 1 : ratio < 3 ? 2 : ratio < 7 ? 5 : 10) * magnitude
            let first = (low / step).rounded(.down), last = (high / step).rounded(.up)
            // Multiplying integers by the step (rather than adding steps) keeps 0.3 from becoming 0.30000000000000004.
            return stride(from: first, through: last, by: 1).map { $0 * step }
        }

        /// Powers of the base inside [low, high]; when that gives fewer than three ticks (a range of
        /// a decade or so) the 2× and 5× multiples join them, and when even that is too few the
        /// ticks are linear ones placed on the log axis.
        package static func logTicks(_ low: Double, _ high: Double, _ scale: Scale) -> [Double] {
            let base: Double = scale == .log2 ? 2 : 10
            let exponents = Int(Self.log(low, scale).rounded(.down))...Int(Self.log(high, scale).rounded(.up))
            let inside = { (value: Double) in value >= low * (1 - 1e-9) && value <= high * (1 + 1e-9) }
            let powers = exponents.map { pow(base, Double($0)) }.filter(inside)
            if powers.count >= 3 || scale == .log2 { return powers.isEmpty ? [low, high] : powers }
            let multiples = exponents.flatMap { e in [1.0, 2, 5].map { $0 * pow(10, Double(e)) } }.filter(inside)
            if multiples.count >= 3 { return multiples }
            return niceTicks(low, high, target: 4).filter { $0 > 0 && inside($0) }
        }

        private static func log(_ value: Double, _ scale: Scale) -> Double { scale == .log2 ? Foundation.log2(value) : log10(value) }
        private static func power(_ exponent: Double, _ scale: Scale) -> Double { pow(scale == .log2 ? 2 : 10, exponent) }

        /// Tick text: thousands as k and millions as M (parameter counts), otherwise the shortest of
        /// four significant digits, so 0.30000000000000004 prints as 0.3.
        public static func format(_ value: Double) -> String {
            let magnitude = abs(value)
            if magnitude >= 1e6 { return String(format: "%gM", (value / 1e6 * 1000).rounded() / 1000) }
            if magnitude >= 1e3 { return String(format: "%gk", (value / 1e3 * 1000).rounded() / 1000) }
            return String(format: "%.4g", value)
        }
    }

    /// The SVG text being built, with coordinates printed to a tenth of a pixel.
    public struct SVGWriter {
        public private(set) var body = ""

        public init() {}

        public static func escape(_ text: String) -> String {
            var escaped = ""
            for character in text {
                switch character {
                case "&": escaped += "&amp;"
                case "<": escaped += "&lt;"
                case ">": escaped += "&gt;"
                case "\"": escaped += "&quot;"
                default: escaped.append(character)
                }
            }
            return escaped
        }

        package static func number(_ value: Double) -> String {
            let rounded = (value * 10).rounded() / 10
            return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        }

        public mutating func raw(_ text: String) { body += text + "\n" }

        public mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, dashed: Bool = false) {
            let n = Self.number
            raw("<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>")
        }

        public mutating func rect(_ x: Double, _ y: Double, _ width: Double, _ height: Double, fill: String, stroke: String? = nil, opacity: Double = 1) {
            let n = Self.number
            raw("<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"\(fill)\""
                + (stroke.map { " stroke=\"\($0)\"" } ?? "") + (opacity < 1 ? " fill-opacity=\"\(opacity)\"" : "") + "/>")
        }

        public mutating func circle(_ x: Double, _ y: Double, radius: Double, fill: String, stroke: String = "#FFFFFF") {
            let n = Self.number
            raw("<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(radius))\" fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"0.8\"/>")
        }

        /// An open polyline through `points`, or a closed filled polygon.
        public mutating func path(_ points: [(Double, Double)], stroke: String?, width: Double = 1.5, dashed: Bool = false, fill: String? = nil, fillOpacity: Double = 1, clip: String? = nil) {
            guard let first = points.first else { return }
            let n = Self.number
            var d = "M\(n(first.0)) \(n(first.1))"
            for point in points.dropFirst() { d += "L\(n(point.0)) \(n(point.1))" }
            if fill != nil { d += "Z" }
            var attributes = "d=\"\(d)\" fill=\"\(fill ?? "none")\""
            if fill != nil, fillOpacity < 1 { attributes += " fill-opacity=\"\(fillOpacity)\"" }
            if let stroke { attributes += " stroke=\"\(stroke)\" stroke-width=\"\(n(width))\" stroke-linejoin=\"round\"" }
            if dashed { attributes += " stroke-dasharray=\"6 4\"" }
            if let clip { attributes += " clip-path=\"url(#\(clip))\"" }
            raw("<path \(attributes)/>")
        }

        public enum Anchor: String { case start, middle, end }

        public mutating func text(_ string: String, _ x: Double, _ y: Double, size: Double = 12, anchor: Anchor = .start, weight: String? = nil, fill: String = "#222222", rotate: Bool = false) {
            let n = Self.number
            var attributes = "x=\"\(n(x))\" y=\"\(n(y))\" font-size=\"\(n(size))\" text-anchor=\"\(anchor.rawValue)\" fill=\"\(fill)\""
            if let weight { attributes += " font-weight=\"\(weight)\"" }
            if rotate { attributes += " transform=\"rotate(-90 \(n(x)) \(n(y)))\"" }
            raw("<text \(attributes)>\(Self.escape(string))</text>")
        }

        /// A width estimate for laying out labels: SVG cannot measure text before rendering, and
        /// sans-serif glyphs average a little over half the font size.
        package static func textWidth(_ string: String, size: Double) -> Double { Double(string.count) * size * 0.58 }
    }

    /// A rectangle in SVG pixels.
    public struct Frame {
        public var x, y, width, height: Double

        public init(x: Double, y: Double, width: Double, height: Double) {
            (self.x, self.y, self.width, self.height) = (x, y, width, height)
        }
    }

    /// Something drawn inside one cell of a figure's grid.
    public protocol Panel {
        /// `id` is unique within the figure, for clip paths.
        func render(into svg: inout SVGWriter, frame: Frame, id: String)
    }

    /// Space around a panel's plot area for the title, tick labels and axis labels.
    package struct Margins {
        package var top = 30.0, right = 14.0, bottom = 46.0, left = 62.0

        package init(top: Double = 30, right: Double = 14, bottom: Double = 46, left: Double = 62) {
            (self.top, self.right, self.bottom, self.left) = (top, right, bottom, left)
        }
    }

    /// One series of an x–y panel: a mean line and/or markers, with an optional spread per point
    /// drawn as a translucent band or as error bars.
    public struct Series {
        public enum Spread { case band, errorBars }

        public var color: String
        public var points: [(x: Double, y: Double)]
        /// The low and high end of the spread at each point's x (same order as `points`).
        public var spread: [(low: Double, high: Double)]
        public var spreadStyle: Spread
        /// nil draws no connecting line (markers only).
        public var line: (width: Double, dashed: Bool)?
        public var markers: Bool

        public init(color: String, points: [(x: Double, y: Double)], spread: [(low: Double, high: Double)] = [], spreadStyle: Spread = .band,
                    line: (width: Double, dashed: Bool)? = (1.5, false), markers: Bool = false) {
            self.color = color
            self.points = points
            self.spread = spread
            self.spreadStyle = spreadStyle
            self.line = line
            self.markers = markers
        }
    }

    /// A line / scatter plot: series over shared x and y axes. Bands are drawn under every line so
    /// that no band hides another series' line.
    public struct XYPanel: Panel {
        public var title: String
        public var x: Axis
        public var y: Axis
        public var series: [Series]
        /// Shown in the middle of the plot area when there is nothing to draw.
        public var emptyNote: String

        public init(title: String, x: Axis, y: Axis, series: [Series], emptyNote: String = "no data") {
            self.title = title
            self.x = x
            self.y = y
            self.series = series
            self.emptyNote = emptyNote
        }

        public func render(into svg: inout SVGWriter, frame: Frame, id: String) {
            let margins = Margins()
            let plot = Frame(x: frame.x + margins.left, y: frame.y + margins.top,
                             width: frame.width - margins.left - margins.right, height: frame.height - margins.top - margins.bottom)
            drawAxes(&svg, title: title, x: x, y: y, plot: plot, frame: frame)
            func point(_ vx: Double, _ vy: Double) -> (Double, Double) {
                (plot.x + x.fraction(vx) * plot.width, plot.y + (1 - y.fraction(vy)) * plot.height)
            }
            let clip = "clip-\(id)"
            svg.raw("<clipPath id=\"\(clip)\"><rect x=\"\(SVGWriter.number(plot.x))\" y=\"\(SVGWriter.number(plot.y))\" width=\"\(SVGWriter.number(plot.width))\" height=\"\(SVGWriter.number(plot.height))\"/></clipPath>")

            let drawable = series.map { series in
                zip(series.points, series.spread.isEmpty ? series.points.map { ($0.y, $0.y) } : series.spread)
                    .filter { x.accepts($0.0.x) && y.accepts($0.0.y) }
            }
            if drawable.allSatisfy(\.isEmpty) {
                svg.text(emptyNote, plot.x + plot.width / 2, plot.y + plot.height / 2, size: 12, anchor: .middle, fill: "#888888")
                return
            }
            for (series, points) in zip(series, drawable) where series.spreadStyle == .band && !series.spread.isEmpty {
                let band = points.filter { y.accepts($0.1.low) && y.accepts($0.1.high) }
                let upper = band.map { point($0.0.x, $0.1.high) }, lower = band.reversed().map { point($0.0.x, $0.1.low) }
                svg.path(upper + lower, stroke: nil, fill: series.color, fillOpacity: 0.14, clip: clip)
            }
            for (series, points) in zip(series, drawable) {
                if series.spreadStyle == .errorBars, !series.spread.isEmpty {
                    // A zero-width spread (one seed: no interval) draws no bar.
                    for (mean, spread) in points where spread.low < spread.high && y.accepts(spread.low) && y.accepts(spread.high) {
                        let (px, low) = point(mean.x, spread.low), high = point(mean.x, spread.high).1
                        svg.line(px, low, px, high, stroke: series.color, width: 1.4)
                        svg.line(px - 4, low, px + 4, low, stroke: series.color, width: 1.4)
                        svg.line(px - 4, high, px + 4, high, stroke: series.color, width: 1.4)
                    }
                }
                if let line = series.line {
                    svg.path(points.map { point($0.0.x, $0.0.y) }, stroke: series.color, width: line.width, dashed: line.dashed, clip: clip)
                }
                if series.markers {
                    for (mean, _) in points {
                        let (px, py) = point(mean.x, mean.y)
                        svg.circle(px, py, radius: 3.6, fill: series.color)
                    }
                }
            }
        }
    }

    /// Rows of coloured cells over a shared x axis: one row per module, cells spanning steps.
    public struct HeatmapPanel: Panel {
        public struct Cell {
            public var start, end: Double
            /// Position on the colour scale, 0...1.
            public var level: Double

            public init(start: Double, end: Double, level: Double) {
                self.start = start
                self.end = end
                self.level = level
            }
        }

        public struct Row {
            public var label: String
            public var cells: [Cell]
            /// Printed to the right of the row (e.g. the final value).
            public var trailing: String

            public init(label: String, cells: [Cell], trailing: String) {
                self.label = label
                self.cells = cells
                self.trailing = trailing
            }
        }

        public var title: String
        public var x: Axis
        public var rows: [Row]
        public var trailingHeader: String

        public init(title: String, x: Axis, rows: [Row], trailingHeader: String) {
            self.title = title
            self.x = x
            self.rows = rows
            self.trailingHeader = trailingHeader
        }

        public func render(into svg: inout SVGWriter, frame: Frame, id: String) {
            let labelWidth = min(rows.map { SVGWriter.textWidth($0.label, size: 11) }.max() ?? 0, frame.width * 0.35)
            var margins = Margins()
            margins.left = labelWidth + 16
            margins.right = max(SVGWriter.textWidth(trailingHeader, size: 10), 30) + 10
            let plot = Frame(x: frame.x + margins.left, y: frame.y + margins.top,
                             width: frame.width - margins.left - margins.right, height: frame.height - margins.top - margins.bottom)
            let rowHeight = plot.height / Double(max(rows.count, 1))
            let fontSize = min(11, max(rowHeight * 0.75, 7))
            for (index, row) in rows.enumerated() {
                let top = plot.y + Double(index) * rowHeight
                // Adjacent cells of one colour become one rectangle: ranks change rarely, so this
                // keeps the file small without changing the picture.
                var merged: [Cell] = []
                for cell in row.cells {
                    if var last = merged.last, Palette.viridis(last.level) == Palette.viridis(cell.level), last.end == cell.start {
                        last.end = cell.end
                        merged[merged.count - 1] = last
                    } else {
                        merged.append(cell)
                    }
                }
                for cell in merged {
                    let left = plot.x + x.fraction(cell.start) * plot.width, right = plot.x + x.fraction(cell.end) * plot.width
                    svg.rect(left, top, max(right - left, 0.5), rowHeight, fill: Palette.viridis(cell.level))
                }
                svg.text(row.label, plot.x - 6, top + rowHeight / 2 + fontSize * 0.35, size: fontSize, anchor: .end)
                svg.text(row.trailing, plot.x + plot.width + 6, top + rowHeight / 2 + fontSize * 0.35, size: fontSize)
            }
            svg.text(trailingHeader, plot.x + plot.width + 6, plot.y - 4, size: 10, fill: "#555555")
            drawAxes(&svg, title: title, x: x, y: nil, plot: plot, frame: frame)
        }
    }

    /// A legend item: a short line sample (solid or dashed, with or without a marker) or a bold
    /// heading that introduces the items after it.
    public struct LegendEntry {
        public enum Mark { case line(dashed: Bool), lineAndMarker, heading }

        public var label: String
        public var color: String
        public var mark: Mark

        public init(_ label: String, color: String = "#222222", mark: Mark) {
            self.label = label
            self.color = color
            self.mark = mark
        }

        public static func heading(_ label: String) -> LegendEntry { LegendEntry(label, mark: .heading) }
    }

    /// A horizontal colour bar for a heatmap's 0...1 scale.
    public struct ColorBar {
        public var label: String
        /// Ticks as (position on the scale, text).
        public var ticks: [(Double, String)]

        public init(label: String, ticks: [(Double, String)]) {
            self.label = label
            self.ticks = ticks
        }
    }

    /// Panels in a grid under a title and a legend that wraps to the figure's width.
    public struct Figure {
        public var title: String
        public var panels: [any Panel]
        public var columns: Int
        public var panelWidth: Double
        public var panelHeight: Double
        public var legend: [LegendEntry]
        public var colorBar: ColorBar?

        public init(title: String, panels: [any Panel], columns: Int, panelWidth: Double, panelHeight: Double,
                    legend: [LegendEntry] = [], colorBar: ColorBar? = nil) {
            self.title = title
            self.panels = panels
            self.columns = max(1, min(columns, panels.count))
            self.panelWidth = panelWidth
            self.panelHeight = panelHeight
            self.legend = legend
            self.colorBar = colorBar
        }

        public var svg: String {
            let padding = 12.0
            // Wide enough for the title as well as the panels.
            let width = max(Double(columns) * panelWidth, SVGWriter.textWidth(title, size: 15)) + 2 * padding
            var body = SVGWriter()
            var cursorY = 26.0
            body.text(title, padding, cursorY, size: 15, weight: "600")
            cursorY += 12
            cursorY = drawLegend(&body, top: cursorY, left: padding, width: width - 2 * padding)
            let rows = (panels.count + columns - 1) / columns
            for (index, panel) in panels.enumerated() {
                let frame = Frame(x: padding + Double(index % columns) * panelWidth, y: cursorY + Double(index / columns) * panelHeight,
                                  width: panelWidth, height: panelHeight)
                panel.render(into: &body, frame: frame, id: "p\(index)")
            }
            let height = cursorY + Double(rows) * panelHeight + padding
            let n = SVGWriter.number
            return """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" viewBox="0 0 \(n(width)) \(n(height))" font-family="Helvetica, Arial, 'DejaVu Sans', sans-serif">
            <rect width="100%" height="100%" fill="#FFFFFF"/>
            \(body.body)</svg>

            """
        }

        /// Lays the legend items out left to right, wrapping lines; returns the y below it.
        private func drawLegend(_ svg: inout SVGWriter, top: Double, left: Double, width: Double) -> Double {
            guard !legend.isEmpty || colorBar != nil else { return top + 4 }
            let lineHeight = 20.0
            var x = left, y = top + 14
            for (index, entry) in legend.enumerated() {
                let sample: Double = { if case .heading = entry.mark { return 0 } else { return 30 } }()
                let itemWidth = sample + SVGWriter.textWidth(entry.label, size: 12) + 18
                // A heading starts a new group, so a wrap never leaves a heading alone at a line end.
                let groupWidth = entry.mark.isHeading && index + 1 < legend.count
                    ? itemWidth + 30 + SVGWriter.textWidth(legend[index + 1].label, size: 12) : itemWidth
                if x + groupWidth > left + width, x > left {
                    x = left
                    y += lineHeight
                }
                switch entry.mark {
                case .heading:
                    break
                case .line(let dashed):
                    svg.line(x, y, x + 24, y, stroke: entry.color, width: 2.2, dashed: dashed)
                case .lineAndMarker:
                    svg.line(x, y, x + 24, y, stroke: entry.color, width: 2)
                    svg.circle(x + 12, y, radius: 3.6, fill: entry.color)
                }
                svg.text(entry.label, x + sample, y + 4, size: 12, weight: entry.mark.isHeading ? "600" : nil)
                x += itemWidth
            }
            if let colorBar {
                if !legend.isEmpty { y += lineHeight + 4 }
                let barWidth = 220.0, barLeft = left + SVGWriter.textWidth(colorBar.label, size: 12) + 12
                svg.text(colorBar.label, left, y + 4, size: 12, weight: "600")
                let steps = 44
                for step in 0..<steps {
                    let t = Double(step) / Double(steps - 1)
                    svg.rect(barLeft + Double(step) * barWidth / Double(steps), y - 6, barWidth / Double(steps) + 0.6, 12, fill: Palette.viridis(t))
                }
                for (position, label) in colorBar.ticks {
                    svg.text(label, barLeft + position * barWidth, y + 20, size: 10, anchor: .middle, fill: "#444444")
                }
                y += 16
            }
            return y + 16
        }
    }
}

/// Draws the frame, grid, ticks and axis labels of an x–y plot area and the panel title.
private func drawAxes(_ svg: inout SVGPlot.SVGWriter, title: String, x: SVGPlot.Axis, y: SVGPlot.Axis?, plot: SVGPlot.Frame, frame: SVGPlot.Frame) {
    svg.text(title, frame.x + frame.width / 2, frame.y + 18, size: 13, anchor: .middle, weight: "600")
    for tick in x.ticks where x.accepts(tick) {
        let px = plot.x + x.fraction(tick) * plot.width
        guard px >= plot.x - 0.5, px <= plot.x + plot.width + 0.5 else { continue }
        if y != nil { svg.line(px, plot.y, px, plot.y + plot.height, stroke: "#E6E6E6") }
        svg.line(px, plot.y + plot.height, px, plot.y + plot.height + 4, stroke: "#555555")
        svg.text(SVGPlot.Axis.format(tick), px, plot.y + plot.height + 16, size: 11, anchor: .middle, fill: "#444444")
    }
    svg.text(x.label, plot.x + plot.width / 2, plot.y + plot.height + 34, size: 12, anchor: .middle)
    if let y {
        for tick in y.ticks where y.accepts(tick) {
            let py = plot.y + (1 - y.fraction(tick)) * plot.height
            guard py >= plot.y - 0.5, py <= plot.y + plot.height + 0.5 else { continue }
            svg.line(plot.x, py, plot.x + plot.width, py, stroke: "#E6E6E6")
            svg.line(plot.x - 4, py, plot.x, py, stroke: "#555555")
            svg.text(SVGPlot.Axis.format(tick), plot.x - 7, py + 4, size: 11, anchor: .end, fill: "#444444")
        }
        svg.text(y.label, frame.x + 14, plot.y + plot.height / 2, size: 12, anchor: .middle, rotate: true)
    }
    svg.rect(plot.x, plot.y, plot.width, plot.height, fill: "none", stroke: "#888888")
}

extension SVGPlot.LegendEntry.Mark {
    package var isHeading: Bool { if case .heading = self { return true } else { return false } }
}
