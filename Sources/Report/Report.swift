import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchPlotting

/// The metric the report leads with: the first official GLUE metric of the task's summary (its
/// own official one: mcc for CoLA, f1 for MRPC, pearson for STS-B, accuracy for SST-2 and RTE),
/// else eval loss.
package struct HeadlineMetric {
    package var name: String
    package var higherIsBetter: Bool

    /// The summary.csv column holding each run's final value.
    package var column: String { "final_eval_\(name)" }
    package var title: String { "final eval \(name)" }
    package var direction: String { higherIsBetter ? "higher is better" : "lower is better" }

    /// `columns` in summary.csv's order, which is the task's `evalMetrics` order.
    package static func choose(columns: [String], runs: [ExperimentResults.Run]) -> HeadlineMetric {
        let official = columns.lazy.compactMap { column -> GLUEMetric? in
            guard column.hasPrefix("final_eval_") else { return nil }
            return GLUEMetric(rawValue: String(column.dropFirst("final_eval_".count)))
        }.first { metric in runs.contains { $0.evalMetrics["final_eval_\(metric.name)"] != nil } }
        return official.map { HeadlineMetric(name: $0.name, higherIsBetter: $0.higherIsBetter) }
            ?? HeadlineMetric(name: "loss", higherIsBetter: false)
    }
}

/// `lorabench report RESULTS`: SVG plots and an index.html that shows them, written next to the
/// CSV files they come from, so the folder can be opened from disk or committed as it is.
public enum Report {
    /// Reads `directory`'s summary.csv and metrics.csv (with selection.csv and compare.csv when
    /// they exist) and writes the plots and index.html into it, each atomically. A compare.csv
    /// computed from another summary.csv is not shown: the page says to run `compare` again.
    /// Returns the paths written, index.html last.
    @discardableResult
    public static func write(resultsDirectory directory: String) throws -> [String] {
        let layout = ResultsLayout(root: directory)
        let results = try ExperimentResults.load(directory: directory)
        let summary = FileManager.default.contents(atPath: layout.summaryFile) ?? Data()
        func comparison(_ path: String, producer: String) throws -> ReportBuilder.Comparison? {
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            let table = try CSVTable(contentsOf: path, producer: producer)
            return PairedComparison.staleness(of: table, summary: summary).map { .stale(table, reason: $0) } ?? .current(table)
        }
        let builder = ReportBuilder(results, selection: try SelectedSettings.load(resultsDirectory: directory),
                                    comparison: try comparison(layout.compareFile, producer: "lorabench compare RESULTS --baseline VARIANT"),
                                    rankComparison: try comparison(layout.rankComparisonFile, producer: "lorabench compare RESULTS --baseline-rank R"),
                                    stepsTo: try comparison(layout.stepsToFile, producer: "lorabench compare RESULTS --steps-to X"))
        let plots = builder.plots()
        var written: [String] = []
        for plot in plots {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(plot.file).path
            try AtomicFile.write(plot.figure.svg, to: path)
            written.append(path)
        }
        let index = URL(fileURLWithPath: directory).appendingPathComponent("index.html").path
        try AtomicFile.write(builder.html(plots: plots), to: index)
        return written + [index]
    }
}

/// Builds the plots and the page from one experiment's results.
package struct ReportBuilder {
    /// One figure of the page: its SVG file name, the figure, and the caption under it.
    package struct Plot {
        package var file: String
        package var figure: SVGPlot.Figure
        package var caption: String
    }

    package let results: ExperimentResults
    /// The learning rates chosen on the validation split (selection.csv): every table and plot
    /// then shows the runs of the chosen settings only.
    package let selection: SelectedSettings?
    /// compare.csv, written by `lorabench compare`, and whether it still describes these results.
    package enum Comparison {
        case current(CSVTable)
        /// Computed from another summary.csv (`reason` says how it differs): not shown.
        case stale(CSVTable, reason: String)
    }
    package let comparison: Comparison?
    /// compare-rank.csv (`compare --baseline-rank R`) and steps-to.csv (`compare --steps-to X`), the same way.
    package let rankComparison: Comparison?
    package let stepsTo: Comparison?
    package let headline: HeadlineMetric
    /// Axes other than variant, rank and seed that take more than one value for some
    /// (variant, rank) pair, e.g. `init` in an init ablation. They join the variant in labels so
    /// that runs of different settings are never averaged together; an axis that follows the
    /// rank (α = 2r) does not count.
    package let extraAxes: [String]
    /// Variants (with any extra axes) in the order summary.csv first lists them.
    package let configurations: [String]
    package let ranks: [Int]
    package let rankColors: [Int: String]

    /// Runs in the sweep, the ones of settings selection did not choose included.
    package let sweepRunCount: Int

    package init(_ results: ExperimentResults, selection: SelectedSettings? = nil, comparison: Comparison? = nil,
                 rankComparison: Comparison? = nil, stepsTo: Comparison? = nil) {
        var results = results
        sweepRunCount = results.runs.count
        if let selection {
            // A cell where no candidate completed keeps all its runs, so that they are counted.
            results.runs = results.runs.filter { run in
                selection.isSelected(run) || selection.chosen[selection.cellAxes.map { run.axes[$0] ?? "" }] == nil
            }
        }
        self.results = results
        self.selection = selection
        self.comparison = comparison
        self.rankComparison = rankComparison
        self.stepsTo = stepsTo
        headline = HeadlineMetric.choose(columns: results.finalMetricColumns, runs: results.runs)
        var valuesByPair: [String: [String: Set<String>]] = [:]
        for run in results.runs {
            for (axis, value) in run.axes where !["variant", "rank", "seed"].contains(axis) {
                valuesByPair["\(run.variant)\u{0}\(run.rank)", default: [:]][axis, default: []].insert(value)
            }
        }
        extraAxes = results.axisNames.filter { axis in valuesByPair.values.contains { ($0[axis]?.count ?? 0) > 1 } }
        var seen = Set<String>()
        let extra = extraAxes
        configurations = results.runs.map { Self.configuration(of: $0, extraAxes: extra) }.filter { seen.insert($0).inserted }
        ranks = Array(Set(results.runs.map(\.rank))).sorted()
        rankColors = Dictionary(uniqueKeysWithValues: zip(ranks, SVGPlot.Palette.sequential(ranks.count)))
    }

    package static func configuration(of run: ExperimentResults.Run, extraAxes: [String]) -> String {
        ([run.variant] + extraAxes.map { "\($0)=\(run.axes[$0] ?? "")" }).joined(separator: ", ")
    }

    func configuration(of run: ExperimentResults.Run) -> String { Self.configuration(of: run, extraAxes: extraAxes) }

    var completed: [ExperimentResults.Run] { results.runs.filter { $0.status == .completed } }
    var excludedCount: Int { results.runs.count - completed.count }

    func completedRuns(_ configuration: String, rank: Int) -> [ExperimentResults.Run] {
        completed.filter { $0.rank == rank && self.configuration(of: $0) == configuration }
    }

    func configurationColor(_ configuration: String) -> String {
        SVGPlot.Palette.categorical(configurations.firstIndex(of: configuration) ?? 0)
    }

    func plots() -> [Plot] {
        [lossCurves(), metricByRank(), metricByParameters(), adaLoRARanks()].compactMap { $0 }
    }

    // MARK: - Plots

    /// A value axis for `values`: log10 when they are all positive and span more than a factor
    /// of 20 (losses that fall by orders of magnitude would otherwise flatten into the floor).
    private func valueAxis(_ label: String, _ values: [Double]) -> SVGPlot.Axis {
        let finite = values.filter(\.isFinite)
        if let low = finite.min(), let high = finite.max(), low > 0, high / low > 20 {
            return SVGPlot.Axis(label: label + " (log scale)", scale: .log10, covering: finite)
        }
        return SVGPlot.Axis(label: label, scale: .linear, covering: finite)
    }

    /// The mean and its 95 % t interval over runs at every step any of them logged (no
    /// interval, a zero-width one, where only one run logged the step).
    private func aggregate(_ runs: [[ExperimentResults.Point]]) -> (points: [(x: Double, y: Double)], spread: [(low: Double, high: Double)]) {
        var byStep: [Int: [Double]] = [:]
        for points in runs {
            for point in points where point.value.isFinite { byStep[point.step, default: []].append(point.value) }
        }
        let stats = byStep.keys.sorted().map { (step: $0, summary: SampleSummary(byStep[$0]!)!) }
        return (stats.map { (Double($0.step), $0.summary.mean) }, stats.map { Self.interval($0.summary) })
    }

    /// The 95 % interval as a spread, or the mean alone (no bar, no band) without one.
    private static func interval(_ summary: SampleSummary) -> (low: Double, high: Double) {
        summary.interval95.map { ($0.lowerBound, $0.upperBound) } ?? (summary.mean, summary.mean)
    }

    private var excludedNote: String {
        excludedCount == 0 ? "" : " \(excludedCount) diverged or failed run\(excludedCount == 1 ? " is" : "s are") left out (see the table)."
    }

    private var seedsNote: String {
        let seeds = Set(results.runs.map(\.seed)).count
        return seeds == 1 ? "one seed" : "\(seeds) seeds"
    }

    /// How the interval of a mean over seeds is drawn, for captions.
    private var intervalNote: String {
        "the 95 % confidence interval of the mean (Student t over seeds; a cell or step with one seed has none)"
    }

    private var selectionNote: String {
        guard let selection else { return "" }
        return " Each variant and rank shows its learning rate chosen on the \(selection.criterion) (see the table)."
    }

    /// (1) Train and eval loss against step: a panel per variant, a colour per rank.
    func lossCurves() -> Plot {
        typealias Curve = (rank: Int, split: String, points: [(x: Double, y: Double)], spread: [(low: Double, high: Double)])
        let curvesByPanel: [[Curve]] = configurations.map { configuration in
            ranks.flatMap { rank -> [Curve] in
                let runs = completedRuns(configuration, rank: rank)
                return ["train", "eval"].compactMap { split in
                    let key = ExperimentResults.SeriesKey(split: split, metric: "loss")
                    let (points, spread) = aggregate(runs.compactMap { results.series[$0.runID]?[key] })
                    return points.isEmpty ? nil : (rank, split, points, spread)
                }
            }
        }
        let curves = curvesByPanel.flatMap { $0 }
        let steps = curves.flatMap { $0.points.map(\.x) }
        let x = SVGPlot.Axis(label: "step", exactly: (steps.min() ?? 0)...(steps.max() ?? 1))
        let y = valueAxis("loss", curves.flatMap { $0.spread.flatMap { [$0.low, $0.high] } })
        let panels = zip(configurations, curvesByPanel).map { configuration, curves in
            SVGPlot.XYPanel(title: configuration, x: x, y: y, series: curves.map { curve in
                SVGPlot.Series(color: rankColors[curve.rank]!, points: curve.points, spread: curve.spread,
                       line: curve.split == "train" ? (1.3, false) : (2.2, true))
            }, emptyNote: "no completed run logged a loss")
        }
        let legend = [SVGPlot.LegendEntry.heading("rank")] + ranks.map { SVGPlot.LegendEntry("r = \($0)", color: rankColors[$0]!, mark: .line(dashed: false)) }
            + [.heading("   split"), SVGPlot.LegendEntry("train", color: "#555555", mark: .line(dashed: false)),
               SVGPlot.LegendEntry("eval", color: "#555555", mark: .line(dashed: true))]
        let logNote = y.scale == .log10 ? " The loss axis is logarithmic." : ""
        return Plot(file: "loss-curves.svg",
                    figure: SVGPlot.Figure(title: "Loss during training, by variant and rank", panels: panels, columns: 3,
                                   panelWidth: 420, panelHeight: 300, legend: legend),
                    caption: "Loss against training step, one panel per variant, coloured by rank (the larger the rank, the darker). "
                        + "Solid lines are train loss, dashed lines eval loss; each line is the mean over \(seedsNote) and the light band "
                        + "is \(intervalNote).\(logNote)\(excludedNote)\(selectionNote)")
    }

    /// Mean and 95 % interval of the headline metric per configuration and rank, with `x` for
    /// the horizontal position; one series per configuration.
    private func headlineSeries(x: (Int, [ExperimentResults.Run], Int) -> Double) -> [SVGPlot.Series] {
        configurations.enumerated().map { index, configuration in
            let stats = ranks.compactMap { rank -> (Double, SampleSummary)? in
                let runs = completedRuns(configuration, rank: rank)
                guard let summary = SampleSummary(runs.compactMap { $0.evalMetrics[headline.column] }) else { return nil }
                return (x(rank, runs, index), summary)
            }
            return SVGPlot.Series(color: configurationColor(configuration), points: stats.map { ($0.0, $0.1.mean) },
                          spread: stats.map { Self.interval($0.1) }, spreadStyle: .errorBars, line: (1.6, false), markers: true)
        }
    }

    private var configurationLegend: [SVGPlot.LegendEntry] {
        configurations.map { SVGPlot.LegendEntry($0, color: configurationColor($0), mark: .lineAndMarker) }
    }

    private func headlineAxis(_ series: [SVGPlot.Series]) -> SVGPlot.Axis {
        valueAxis("\(headline.title) (\(headline.direction))", series.flatMap { $0.spread.flatMap { [$0.low, $0.high] } })
    }

    /// (2) The headline metric against rank (log2), one line per variant.
    func metricByRank() -> Plot {
        // Variants sit a little apart along x, so that error bars at one rank do not overlap.
        let count = Double(configurations.count)
        let shift = min(0.08, 0.4 / count)
        // A rank-0 baseline (head_only: no adapters) has no place on a log axis; it is drawn as a
        // dashed line across the adapter ranks instead.
        let adapterRanks = ranks.filter { $0 > 0 }.map(Double.init)
        let series = headlineSeries { rank, _, index in Double(rank) * pow(2, (Double(index) - (count - 1) / 2) * shift) }
            .map { series -> SVGPlot.Series in
                guard let first = adapterRanks.first, let last = adapterRanks.last, let level = series.points.first?.y,
                      series.points.allSatisfy({ $0.x == 0 }) else { return series }
                return SVGPlot.Series(color: series.color, points: [(first, level), (last, level)], line: (1.6, true))
            }
            .filter { series in !series.points.contains { $0.x <= 0 } }
        let x = SVGPlot.Axis(label: "rank r (log₂ scale)", scale: .log2, covering: adapterRanks, ticks: adapterRanks)
        let panel = SVGPlot.XYPanel(title: "mean over seeds; bars are 95 % t intervals", x: x, y: headlineAxis(series), series: series,
                            emptyNote: "no completed run has \(headline.column)")
        return Plot(file: "metric-by-rank.svg",
                    figure: SVGPlot.Figure(title: "\(headline.title.capitalizedFirst) against rank", panels: [panel], columns: 1,
                                   panelWidth: 760, panelHeight: 420, legend: configurationLegend),
                    caption: "\(headline.title.capitalizedFirst) (\(headline.direction)) against adapter rank on a log₂ axis, one line per variant; a dashed line is a baseline without adapters (rank 0). "
                        + "Points are means over \(seedsNote), bars are \(intervalNote); variants are shifted slightly "
                        + "sideways so that their bars do not hide each other.\(excludedNote)\(selectionNote)")
    }

    /// (3) The headline metric against trainable parameters (log10), one line per variant.
    func metricByParameters() -> Plot {
        let series = headlineSeries { _, runs, _ in runs.map(\.trainableParameters).reduce(0, +) / Double(runs.count) }
        let x = SVGPlot.Axis(label: "trainable parameters (log₁₀ scale)", scale: .log10, covering: series.flatMap { $0.points.map(\.x) })
        let panel = SVGPlot.XYPanel(title: "each point is one rank; rank grows to the right", x: x, y: headlineAxis(series), series: series,
                            emptyNote: "no completed run has \(headline.column)")
        return Plot(file: "metric-by-parameters.svg",
                    figure: SVGPlot.Figure(title: "\(headline.title.capitalizedFirst) against trainable parameters", panels: [panel], columns: 1,
                                   panelWidth: 760, panelHeight: 420, legend: configurationLegend),
                    caption: "\(headline.title.capitalizedFirst) (\(headline.direction)) against the number of trainable parameters on a "
                        + "log₁₀ axis: the price of each variant's accuracy. Each point is one variant at one rank (mean over "
                        + "\(seedsNote), bars are \(intervalNote)); lines join a variant's ranks.\(excludedNote)\(selectionNote)")
    }

    /// (4) AdaLoRA's rank per module over training, for runs that logged `rank/<module>`: a
    /// heatmap per (variant, target rank), a row per module.
    func adaLoRARanks() -> Plot? {
        let prefix = "rank/"
        func rankSeries(_ run: ExperimentResults.Run) -> [String: [ExperimentResults.Point]] {
            var modules: [String: [ExperimentResults.Point]] = [:]
            for (key, points) in results.series[run.runID] ?? [:] where key.metric.hasPrefix(prefix) {
                modules[String(key.metric.dropFirst(prefix.count))] = points
            }
            return modules
        }
        typealias Group = (configuration: String, rank: Int, modules: [String: [[ExperimentResults.Point]]])
        var groups: [Group] = []
        for configuration in configurations {
            for rank in ranks {
                var modules: [String: [[ExperimentResults.Point]]] = [:]
                for run in completedRuns(configuration, rank: rank) {
                    for (module, points) in rankSeries(run) { modules[module, default: []].append(points) }
                }
                if !modules.isEmpty { groups.append((configuration, rank, modules)) }
            }
        }
        guard !groups.isEmpty else { return nil }

        let steps = groups.flatMap { $0.modules.values.flatMap { $0.flatMap { $0.map(\.step) } } }
        let distinctSteps = Array(Set(steps)).sorted()
        // The last logged step gets a cell as wide as the step before it.
        let lastWidth = distinctSteps.count > 1 ? distinctSteps[distinctSteps.count - 1] - distinctSteps[distinctSteps.count - 2] : 1
        let x = SVGPlot.Axis(label: "step", exactly: Double(distinctSteps.first ?? 0)...Double((distinctSteps.last ?? 0) + lastWidth))
        var largestModuleCount = 0
        let panels: [SVGPlot.HeatmapPanel] = groups.map { group in
            let names = group.modules.keys.sorted { $0.localizedStandardCompare($1) == .orderedAscending }
            largestModuleCount = max(largestModuleCount, names.count)
            let means = names.map { aggregate(group.modules[$0]!).points }
            let initial = means.flatMap { $0.map(\.y) }.max() ?? 1
            let labels = shortLabels(names)
            let rows = zip(labels, means).map { label, points in
                let cells = points.indices.map { index in
                    SVGPlot.HeatmapPanel.Cell(start: points[index].x, end: index + 1 < points.count ? points[index + 1].x : points[index].x + Double(lastWidth),
                                      level: initial > 0 ? points[index].y / initial : 0)
                }
                return SVGPlot.HeatmapPanel.Row(label: label, cells: cells, trailing: points.last.map { String(format: "%.3g", $0.y) } ?? "")
            }
            return SVGPlot.HeatmapPanel(title: "\(group.configuration) · r = \(group.rank) (r₀ = \(String(format: "%.3g", initial)))",
                                x: x, rows: rows, trailingHeader: "final")
        }
        let groupRanks = Set(groups.map(\.rank)).count
        return Plot(file: "adalora-ranks.svg",
                    figure: SVGPlot.Figure(title: "AdaLoRA: rank per module during training", panels: panels, columns: min(groupRanks, 4),
                                   panelWidth: 340, panelHeight: 84 + Double(max(largestModuleCount, 3)) * 18,
                                   colorBar: SVGPlot.ColorBar(label: "rank as a share of r₀", ticks: [(0, "0"), (0.5, "½ r₀"), (1, "r₀")])),
                    caption: "AdaLoRA's rank allocation: one panel per AdaLoRA variant and target rank r, one row per adapted module, "
                        + "time running left to right. The colour is the module's current rank as a share of r₀, the largest rank in "
                        + "the panel (the initial rank), averaged over \(seedsNote); the number at the right is the final rank. "
                        + "Dark rows are modules whose rank budget was pruned away.")
    }

    /// Module names without the dotted prefix they all share (`encoder.layer.`), so rows stay narrow.
    private func shortLabels(_ names: [String]) -> [String] {
        guard names.count > 1 else { return names }
        var shared = names[0].split(separator: ".", omittingEmptySubsequences: false).dropLast()
        for name in names.dropFirst() {
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            while !shared.isEmpty, !(parts.count > shared.count && Array(parts.prefix(shared.count)) == Array(shared)) { shared = shared.dropLast() }
        }
        return names.map { name in
            let short = shared.isEmpty ? name : String(name.dropFirst(shared.joined(separator: ".").count + 1))
            return short.count > 28 ? "…" + short.suffix(27) : short
        }
    }

    // MARK: - Page

    func html(plots: [Plot]) -> String {
        let e = SVGPlot.SVGWriter.escape
        let counts = Dictionary(grouping: results.runs, by: \.status).mapValues(\.count)
        let statusText = RunOutcome.Status.allCases.compactMap { status in counts[status].map { "\($0) \(status.rawValue)" } }.joined(separator: ", ")
        let seeds = Array(Set(results.runs.map(\.seed))).sorted { $0.localizedStandardCompare($1) == .orderedAscending }
        let wall = results.runs.compactMap(\.wallSeconds).reduce(0, +)
        var page = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(e(results.name)) · LoRABench report</title>
        <style>
        body { font-family: Helvetica, Arial, "DejaVu Sans", sans-serif; color: #222; margin: 2rem auto; max-width: 1320px; padding: 0 1.5rem; line-height: 1.45; }
        h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
        h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
        .meta { color: #555; margin-top: 0; }
        .headline { background: #f3f6fa; border-left: 4px solid #0072B2; padding: 0.5rem 0.8rem; }
        table { border-collapse: collapse; margin: 0.6rem 0; font-variant-numeric: tabular-nums; }
        th, td { border: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: right; vertical-align: top; }
        th { background: #f5f5f5; }
        td.name, th.name { text-align: left; }
        td.reason { text-align: left; max-width: 34rem; }
        .n { color: #777; font-size: 0.85em; }
        .excluded { color: #B04000; font-size: 0.85em; }
        figure { margin: 1.2rem 0 2rem; }
        figure img { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
        figcaption { max-width: 60rem; color: #333; margin-top: 0.4rem; }
        code { font-size: 0.92em; }
        </style>
        </head>
        <body>
        <h1>LoRABench report: \(e(results.name))</h1>
        <p class="meta">\(results.runs.count) run\(results.runs.count == 1 ? "" : "s") (\(e(statusText)))\(selection == nil ? "" : " of the chosen learning rates, of \(sweepRunCount) in the sweep") · variants \(e(configurations.joined(separator: ", "))) ·
        ranks \(ranks.map(String.init).joined(separator: ", ")) · seeds \(e(seeds.joined(separator: ", ")))\(wall > 0 ? String(format: " · %.1f min of training", wall / 60) : "").
        Made by <code>lorabench report</code> from <a href="summary.csv">summary.csv</a> and <a href="metrics.csv">metrics.csv</a> in this folder.</p>
        <p class="headline">Headline metric: <strong>\(e(headline.title))</strong>, \(headline.direction)\(headline.name == "loss" ? " (the task reports no GLUE metric)" : "").</p>

        """
        if !extraAxes.isEmpty {
            page += "<p>Runs are grouped by variant and \(e(extraAxes.joined(separator: ", "))), the axes that vary besides rank and seed.</p>\n"
        }
        page += summaryTable() + costTable() + selectionTable()
            + comparisonTable(comparison, file: "compare.csv", option: "--baseline", against: { "with \($0)" })
            + comparisonTable(rankComparison, file: "compare-rank.csv", option: "--baseline-rank", against: { "against \($0) within each variant" })
            + stepsToTable() + failureTable()
        page += "<h2>Plots</h2>\n"
        for (index, plot) in plots.enumerated() {
            page += """
            <figure id="\(e(plot.file))">
            <a href="\(e(plot.file))"><img src="\(e(plot.file))" alt="\(e(plot.figure.title))"></a>
            <figcaption><strong>Figure \(index + 1).</strong> \(e(plot.caption))</figcaption>
            </figure>

            """
        }
        if !plots.contains(where: { $0.file == "adalora-ranks.svg" }) {
            page += "<p>No completed run logged <code>rank/&lt;module&gt;</code> series (AdaLoRA's rank per layer), so there is no rank-allocation plot.</p>\n"
        }
        return page + "</body>\n</html>\n"
    }

    /// Variant × rank: mean and 95 % interval of the headline metric over completed seeds, the
    /// best mean of each rank in bold, and how many runs of the cell were left out.
    private func summaryTable() -> String {
        let e = SVGPlot.SVGWriter.escape
        var html = """
        <h2>\(e(headline.title.capitalizedFirst)) by variant and rank</h2>
        <p>Mean and [95 % confidence interval] over the seeds that completed (n of them; Student t with n − 1 degrees of
        freedom; with n = 1 there is no interval); \(headline.direction). The same numbers, with the standard deviation, are in
        <code>cells.csv</code> (<code>lorabench export --cells</code>).
        Diverged and failed runs, and completed runs whose final value is not a finite number (non-finite), are counted
        in their cell but left out of every mean, band and curve on this page.\(e(selectionNote))</p>
        <table>
        <tr><th class="name">variant</th>\(ranks.map { "<th>r = \($0)</th>" }.joined())</tr>

        """
        let summaries = configurations.map { configuration in
            ranks.map { SampleSummary(completedRuns(configuration, rank: $0).compactMap { $0.evalMetrics[headline.column] }) }
        }
        let best = ranks.indices.map { column -> Double? in
            let means = summaries.compactMap { $0[column]?.mean }
            guard means.count > 1 else { return nil }
            return headline.higherIsBetter ? means.max() : means.min()
        }
        for (configuration, row) in zip(configurations, summaries) {
            html += "<tr><td class=\"name\">\(e(configuration))</td>"
            for (column, rank) in ranks.enumerated() {
                let runs = results.runs.filter { $0.rank == rank && self.configuration(of: $0) == configuration }
                let left = runs.filter { $0.status != .completed }
                var cell = "—"
                if let summary = row[column] {
                    // Four significant digits of the mean, and the interval to the same decimal place.
                    let decimals = summary.mean == 0 ? 4 : max(0, 3 - Int(log10(abs(summary.mean)).rounded(.down)))
                    let interval = summary.interval95.map { String(format: " [%.\(decimals)f, %.\(decimals)f]", $0.lowerBound, $0.upperBound) } ?? ""
                    let value = String(format: "%.\(decimals)f", summary.mean) + interval
                    let rate = selection == nil ? "" : Set(runs.compactMap { $0.axes["learning_rate"] }).sorted().map { ", lr \(e($0))" }.joined()
                    cell = (summary.mean == best[column] ? "<strong>\(value)</strong>" : value) + " <span class=\"n\">n=\(summary.count)\(rate)</span>"
                }
                // A completed run whose final value is nan or infinite is left out of the mean like a diverged one.
                let nonFinite = runs.filter { $0.status == .completed && !($0.evalMetrics[headline.column]?.isFinite ?? true) }.count
                if !left.isEmpty || nonFinite > 0 {
                    let byStatus = Dictionary(grouping: left, by: \.status).sorted { $0.key.rawValue < $1.key.rawValue }
                    let counts = byStatus.map { "\($0.value.count) \($0.key.rawValue)" } + (nonFinite > 0 ? ["\(nonFinite) non-finite"] : [])
                    cell += "<br><span class=\"excluded\">" + counts.joined(separator: ", ") + "</span>"
                }
                html += "<td>\(cell)</td>"
            }
            html += "</tr>\n"
        }
        return html + "</table>\n"
    }

    /// What each cell's runs cost, as peft's method comparison records it: the median over the
    /// completed runs of training seconds, training tokens per second, peak resident memory and
    /// adapter size. Absent for results written before these were recorded.
    private func costTable() -> String {
        let e = SVGPlot.SVGWriter.escape
        guard results.runs.contains(where: { !$0.costs.isEmpty }) else { return "" }
        func median(_ values: [Double]) -> Double? {
            guard !values.isEmpty else { return nil }
            let sorted = values.sorted(), middle = sorted.count / 2
            return sorted.count.isMultiple(of: 2) ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[middle]
        }
        let columns: [(name: String, heading: String, format: (Double) -> String)] = [
            ("training_seconds", "training s", { String(format: "%.1f", $0) }),
            ("train_tokens_per_second", "tokens/s", { String(format: "%.0f", $0) }),
            ("peak_rss_mb", "peak RSS (MB)", { String(format: "%.0f", $0) }),
            ("adapter_bytes", "adapter (KB)", { String(format: "%.1f", $0 / 1024) }),
        ]
        var html = """
        <h2>Cost</h2>
        <p>Median over each cell's completed runs: seconds inside training steps (evaluation excluded), training tokens
        (padding excluded) per such second, the peak resident memory of the process over the run, and the saved adapter's
        size, with the trainable parameters.</p>
        <table>
        <tr><th class="name">variant</th><th>rank</th><th>trainable</th>\(columns.map { "<th>\(e($0.heading))</th>" }.joined())</tr>

        """
        for configuration in configurations {
            for rank in ranks {
                let runs = completedRuns(configuration, rank: rank)
                guard let first = runs.first else { continue }
                html += "<tr><td class=\"name\">\(e(configuration))</td><td>\(rank)</td><td>\(Int(first.trainableParameters))</td>"
                for column in columns {
                    html += "<td>\(median(runs.compactMap { $0.costs[column.name] }).map(column.format) ?? "—")</td>"
                }
                html += "</tr>\n"
            }
        }
        return html + "</table>\n"
    }

    /// The learning rate chosen for each cell, with every candidate's mean validation metric.
    private func selectionTable() -> String {
        guard let selection else { return "" }
        let e = SVGPlot.SVGWriter.escape
        var cells: [[String]] = []
        for row in selection.rows where !cells.contains(row.cell) { cells.append(row.cell) }
        // Variant and rank, and the other axes only where they tell cells apart.
        let shown = selection.cellAxes.indices.filter { index in
            ["variant", "rank"].contains(selection.cellAxes[index]) || Set(cells.map { $0[index] }).count > 1
        }
        let halvingNote = !selection.isHalving ? "" : """
         The candidates went through successive halving (Jamieson &amp; Talwalkar 2016; Li et al. 2017): every one trained to
        the first rung, where only the best by the same mean continued to the next, and so on to the last step; a candidate
        stopped at a rung shows the rung, its step and its mean there (over the seeds that reached it), and its runs are in no
        other number of this page.
        """
        var html = """
        <h2>Learning rates chosen on the validation split</h2>
        <p>For each cell, the learning rate with the best mean \(e(selection.criterion)) over its completed seeds (\(selection.better)
        is better), on training examples held out from training (<code>task.validation_examples</code>); the eval split, on which
        every other number of this page is measured, is never used to choose. A learning rate at which seeds diverged or failed is
        chosen only if every candidate lost as many.\(halvingNote) From <a href="selection.csv">selection.csv</a>; the chosen one is in bold.</p>
        <table>
        <tr>\(shown.map { "<th class=\"name\">\(e(selection.cellAxes[$0]))</th>" }.joined())<th class="name">candidates: learning rate → mean (completed of runs)</th></tr>

        """
        for cell in cells {
            let candidates = selection.rows.filter { $0.cell == cell }.map { row -> String in
                var text = "\(e(row.candidate)) → " + (row.mean.map { String(format: "%.4g", $0) } ?? "—") + " (\(row.completed) of \(row.runs))"
                if let step = row.stoppedAtStep {
                    text = "\(e(row.candidate)) → stopped at " + (row.stoppedAtRung.map { "rung \($0), " } ?? "") + "step \(step): "
                        + (row.stoppedMean.map { String(format: "%.4g", $0) } ?? "—") + " (\(row.stoppedRuns) of \(row.runs))"
                }
                return selection.chosen[cell] == row.candidate ? "<strong>\(text)</strong>" : text
            }
            html += "<tr>" + shown.map { "<td class=\"name\">\(e(cell[$0]))</td>" }.joined()
                + "<td class=\"name\">\(candidates.joined(separator: "; "))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    /// compare.csv's paired tests against the baseline, with the significant ones marked.
    /// A paired comparison file (compare.csv against a variant, compare-rank.csv against a rank)
    /// as a table; a stale one is named with the command that recomputes it.
    private func comparisonTable(_ comparison: Comparison?, file: String, option: String, against: (String) -> String) -> String {
        let e = SVGPlot.SVGWriter.escape
        let table: CSVTable
        switch comparison {
        case nil: return ""
        case let .current(current): table = current
        case let .stale(stale, reason):
            let baseline = stale.header.firstIndex(of: "baseline").flatMap { stale.records.first?.fields[$0] } ?? "BASELINE"
            return """
            <h2>Paired comparisons</h2>
            <p class="excluded">\(e(file)) is not shown: \(e(reason)). Run <code>lorabench compare \(e(results.name))
            \(e(option)) \(e(baseline))</code> (with the results folder's path) again, then <code>lorabench report</code>.</p>

            """
        }
        guard let first = table.header.firstIndex(of: "baseline") else { return "" }
        let axes = Array(table.header[..<first])
        func value(_ fields: [String], _ name: String) -> String { table.header.firstIndex(of: name).map { fields[$0] } ?? "" }
        func points(_ text: String) -> String { Double(text).map { String(format: "%+.2f", 100 * $0) } ?? "—" }
        func probability(_ text: String) -> String { Double(text).map { String(format: "%.3g", $0) } ?? "—" }
        let baseline = table.records.first.map { value($0.fields, "baseline") } ?? ""
        let shownAxes = axes.filter { axis in Set(table.records.map { value($0.fields, axis) }).count > 1 || ["variant", "rank"].contains(axis) }
        var html = """
        <h2>Paired comparisons \(e(against(baseline)))</h2>
        <p>From <a href="\(e(file))">\(e(file))</a> (<code>lorabench compare \(e(option))</code>): the difference in each eval metric to the baseline
        cell, in points (× 100), over the seeds both completed; a paired bootstrap 95 % interval over eval examples (Efron &amp; Tibshirani),
        a Student-t 95 % interval over the per-seed differences where n ≥ 3, and for accuracy McNemar's test on the discordant examples
        summed over seeds (exact binomial below 25 of them, else χ² with continuity correction); the other metrics' p-value is the
        bootstrap's. <strong>Significant</strong> means a Holm-adjusted p-value below 0.05 over the comparisons of the same metric.</p>
        <table>
        <tr>\(shownAxes.map { "<th class=\"name\">\(e($0))</th>" }.joined())<th class="name">metric</th><th class="name">baseline cell</th><th>n</th><th>difference [bootstrap 95 %]</th><th>[t 95 % over seeds]</th><th>McNemar p</th><th>Holm p</th><th class="name">significant</th></tr>

        """
        for (_, fields) in table.records {
            let significant = value(fields, "significant") == "true"
            let seedLow = value(fields, "seed_t_low"), seedHigh = value(fields, "seed_t_high")
            // compare.csv files written before other metrics were compared hold accuracy alone.
            let metric = value(fields, "metric").isEmpty ? "accuracy" : value(fields, "metric")
            html += "<tr>" + shownAxes.map { "<td class=\"name\">\(e(value(fields, $0)))</td>" }.joined()
                + "<td class=\"name\">\(e(metric))</td>"
                + "<td class=\"name\">\(e(value(fields, "baseline_cell")))</td><td>\(e(value(fields, "seeds")))</td>"
                + "<td>\(points(value(fields, "difference"))) [\(points(value(fields, "bootstrap_low"))), \(points(value(fields, "bootstrap_high")))]</td>"
                + "<td>" + (seedLow.isEmpty ? "—" : "[\(points(seedLow)), \(points(seedHigh))]") + "</td>"
                + "<td>\(probability(value(fields, "mcnemar_p")))</td><td>\(probability(value(fields, "holm_p")))</td>"
                + "<td class=\"name\">" + (significant ? "<strong>yes</strong>" : "no") + "</td></tr>\n"
        }
        return html + "</table>\n"
    }

    /// steps-to.csv (`lorabench compare --steps-to X`): per cell, the median steps its seeds took to
    /// reach the target against the baseline cell's, and the sign test over the paired seeds.
    private func stepsToTable() -> String {
        let e = SVGPlot.SVGWriter.escape
        let table: CSVTable
        switch stepsTo {
        case nil: return ""
        case let .current(current): table = current
        case let .stale(_, reason):
            return "<h2>Steps to a target</h2>\n<p class=\"excluded\">steps-to.csv is not shown: \(e(reason)). Run <code>lorabench compare "
                + "\(e(results.name)) --steps-to X</code> again, then <code>lorabench report</code>.</p>\n"
        }
        guard let first = table.header.firstIndex(of: "baseline") else { return "" }
        let axes = Array(table.header[..<first])
        func value(_ fields: [String], _ name: String) -> String { table.header.firstIndex(of: name).map { fields[$0] } ?? "" }
        let shownAxes = axes.filter { axis in Set(table.records.map { value($0.fields, axis) }).count > 1 || ["variant", "rank"].contains(axis) }
        let target = table.records.first.map { "\(value($0.fields, "metric")) \(value($0.fields, "better") == "higher" ? "≥" : "≤") \(value($0.fields, "target"))" } ?? ""
        var html = """
        <h2>Steps to \(e(target))</h2>
        <p>From <a href="steps-to.csv">steps-to.csv</a> (<code>lorabench compare --steps-to</code>; each run's step in
        <a href="steps-to-runs.csv">steps-to-runs.csv</a>): the evaluation step at which each seed first reached the target, the
        cell's against the baseline cell's over their paired seeds, and the sign test over those pairs (a seed that never
        reached it counts as slower); <strong>significant</strong>: Holm-adjusted p below 0.05.</p>
        <table>
        <tr>\(shownAxes.map { "<th class=\"name\">\(e($0))</th>" }.joined())<th class="name">baseline cell</th><th>seeds</th><th>both reached</th><th>steps</th><th>baseline steps</th><th>faster / slower / ties</th><th>sign p</th><th>Holm p</th><th class="name">significant</th></tr>

        """
        for (_, fields) in table.records {
            let dash = { (text: String) in text.isEmpty ? "—" : text }
            html += "<tr>" + shownAxes.map { "<td class=\"name\">\(e(value(fields, $0)))</td>" }.joined()
                + "<td class=\"name\">\(e(value(fields, "baseline_cell")))</td><td>\(e(value(fields, "seeds")))</td><td>\(e(value(fields, "both_reached")))</td>"
                + "<td>\(e(dash(value(fields, "steps"))))</td><td>\(e(dash(value(fields, "baseline_steps"))))</td>"
                + "<td>\(e(value(fields, "faster"))) / \(e(value(fields, "slower"))) / \(e(value(fields, "ties")))</td>"
                + "<td>\(e(dash(value(fields, "sign_p"))))</td><td>\(e(dash(value(fields, "holm_p"))))</td>"
                + "<td class=\"name\">" + (value(fields, "significant") == "true" ? "<strong>yes</strong>" : "no") + "</td></tr>\n"
        }
        return html + "</table>\n"
    }

    /// Every run that did not complete, with its reason.
    private func failureTable() -> String {
        let e = SVGPlot.SVGWriter.escape
        let left = results.runs.filter { $0.status != .completed }
        guard !left.isEmpty else { return "<p>All \(results.runs.count) runs completed.</p>\n" }
        var html = """
        <h2>Runs that did not complete (\(left.count))</h2>
        <table>
        <tr><th class="name">run</th><th class="name">variant</th><th>rank</th><th>seed</th><th class="name">status</th><th class="name">reason</th></tr>

        """
        for run in left {
            html += "<tr><td class=\"name\"><code>\(e(run.runID))</code></td><td class=\"name\">\(e(configuration(of: run)))</td>"
                + "<td>\(run.rank)</td><td>\(e(run.seed))</td><td class=\"name\">\(run.status.rawValue)</td>"
                + "<td class=\"reason\">\(e(run.reason.isEmpty ? "(no reason recorded)" : run.reason))</td></tr>\n"
        }
        return html + "</table>\n"
    }
}

private extension String {
    /// "final eval loss" → "Final eval loss", for titles that start a sentence.
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
