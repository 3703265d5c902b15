import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchVariants
@testable import LoRABenchExperiments
@testable import LoRABenchPlotting
@testable import LoRABenchReport
import LoRABenchTestSupport

private func temporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-report-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// The reason of the diverged run: a comma and quotes, so the CSV has to quote it.
private let divergedReason = "loss became nan at step 30 (lr 0.1, \"warmup\" off)"

/// A small results folder in the runner's own column layout (`SummaryCSV`, `MetricsCSV`): lora and
/// adalora × ranks 4, 8 × seeds 0, 1, where lora r = 8 seed 1 diverged and adalora logs
/// `rank/fc1` and `rank/fc2`. Loss falls faster at the larger rank.
private func writeResults(accuracy: Bool = false) throws -> String {
    let directory = try temporaryDirectory() + "/tiny-sweep"
    let evalMetrics = [EvalMetric(name: "loss", higherIsBetter: false)] + (accuracy ? [EvalMetric(name: "accuracy", higherIsBetter: true)] : [])
    let summaryColumns = SummaryCSV.columns(evalMetrics: evalMetrics)
    var summary = CSV.line(summaryColumns)
    var metrics = CSV.line(MetricsCSV.experimentColumns(showingBase: false))
    for variant in ["lora", "adalora"] {
        for rank in [4, 8] {
            for seed in 0..<2 {
                let id = "\(variant)-r\(rank)-s\(seed)"
                let diverged = variant == "lora" && rank == 8 && seed == 1
                let axes = [id, variant, String(rank), "2r", String(seed), variant == "adalora" ? "n/a" : "kaiming", "fc1+fc2", "0", "false"]
                func add(_ step: Int, _ split: String, _ metric: String, _ value: Double) {
                    metrics += CSV.line(axes + [String(step), split, metric, formatMetric(value)])
                }
                func loss(_ step: Int) -> Double { (1 + 8 / Double(rank)) * exp(-Double(step) / 40) + 0.05 + 0.02 * Double(seed) }
                let lastStep = diverged ? 30 : 100
                for step in stride(from: 0, through: lastStep, by: 10) {
                    add(step, "train", "loss", diverged && step == lastStep ? .nan : loss(step))
                    if step % 20 == 0 {
                        add(step, "eval", "loss", 1.1 * loss(step))
                        if accuracy { add(step, "eval", "accuracy", 1 - loss(step) / 3) }
                    }
                    if variant == "adalora" {
                        add(step, "train", "rank/fc1", Double(rank * 3 / 2 - step * rank / 200))
                        add(step, "train", "rank/fc2", Double(rank * 3 / 2))
                    }
                }
                var row = Dictionary(uniqueKeysWithValues: zip(RunSpec.axisColumns, axes))
                row["status"] = diverged ? "diverged" : "completed"
                row["reason"] = diverged ? divergedReason : ""
                if !diverged {
                    row["final_eval_loss"] = formatMetric(1.1 * loss(100))
                    row["best_eval_loss"] = formatMetric(1.1 * loss(100))
                    if accuracy { row["final_eval_accuracy"] = formatMetric(1 - loss(100) / 3) }
                }
                row["trainable_parameters"] = String(rank * 96)
                row["trainable_share"] = formatMetric(Double(rank) / 1000)
                row["wall_seconds"] = "1.5"
                row["training_seconds"] = String(2 + seed)
                row["train_tokens_per_second"] = String(1000 * (1 + seed))
                row["peak_rss_mb"] = "300"
                row["adapter_bytes"] = String(rank * 1024)
                summary += CSV.line(summaryColumns.map { row[$0] ?? "" })
            }
        }
    }
    try AtomicFile.write(summary, to: directory + "/summary.csv")
    try AtomicFile.write(metrics, to: directory + "/metrics.csv")
    return directory
}

private func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

@Suite("Report")
struct ReportTests {
    @Test("the report writes index.html and one SVG per plot, AdaLoRA's ranks included")
    func writesPageAndPlots() throws {
        let directory = try writeResults()
        let written = try Report.write(resultsDirectory: directory)
        #expect(written.map { URL(fileURLWithPath: $0).lastPathComponent }
            == ["loss-curves.svg", "metric-by-rank.svg", "metric-by-parameters.svg", "adalora-ranks.svg", "index.html"])
        for path in written { #expect(FileManager.default.fileExists(atPath: path), "\(path) was not written") }
        let page = try text(directory + "/index.html")
        #expect(page.contains("<title>tiny-sweep"))
        #expect(page.contains("Headline metric: <strong>final eval loss</strong>, lower is better"))
    }

    @Test("the cost table gives each cell's medians over its completed runs")
    func costTable() throws {
        let directory = try writeResults()
        _ = try Report.write(resultsDirectory: directory)
        let page = try text(directory + "/index.html")
        #expect(page.contains("<h2>Cost</h2>"))
        // lora r = 4: both seeds completed (2 and 3 s, 1000 and 2000 tokens/s); r = 8: seed 1 diverged.
        #expect(page.contains("<td class=\"name\">lora</td><td>4</td><td>384</td><td>2.5</td><td>1500</td><td>300</td><td>4.0</td>"))
        #expect(page.contains("<td class=\"name\">lora</td><td>8</td><td>768</td><td>2.0</td><td>1000</td><td>300</td><td>8.0</td>"))
    }

    @Test("every SVG parses as XML")
    func svgsParseAsXML() throws {
        let directory = try writeResults()
        for path in try Report.write(resultsDirectory: directory) where path.hasSuffix(".svg") {
            let parser = try #require(XMLParser(contentsOf: URL(fileURLWithPath: path)))
            #expect(parser.parse(), "\(path): \(String(describing: parser.parserError))")
        }
    }

    @Test("every file the page refers to exists, and every plot is on the page")
    func pageReferencesExist() throws {
        let directory = try writeResults()
        let written = try Report.write(resultsDirectory: directory)
        let page = try text(directory + "/index.html")
        let pattern = try NSRegularExpression(pattern: "(?:src|href)=\"([^\"#]+)\"")
        let references = pattern.matches(in: page, range: NSRange(page.startIndex..., in: page)).map {
            String(page[Range($0.range(at: 1), in: page)!])
        }
        #expect(!references.isEmpty)
        for reference in references {
            #expect(FileManager.default.fileExists(atPath: directory + "/" + reference), "the page links to missing \(reference)")
        }
        for plot in written where plot.hasSuffix(".svg") {
            #expect(references.contains(URL(fileURLWithPath: plot).lastPathComponent), "\(plot) is not shown on the page")
        }
    }

    @Test("a diverged run is listed with its reason and left out of its cell's mean")
    func divergedRunInTable() throws {
        let directory = try writeResults()
        try Report.write(resultsDirectory: directory)
        let page = try text(directory + "/index.html")
        #expect(page.contains("<code>lora-r8-s1</code>"))
        #expect(page.contains(SVGPlot.SVGWriter.escape(divergedReason)))
        #expect(page.contains("n=1</span><br><span class=\"excluded\">1 diverged</span>"))
        #expect(page.contains("1 diverged or failed run is left out"))
    }

    @Test("eval accuracy is the headline metric when the task reports it")
    func accuracyHeadline() throws {
        let directory = try writeResults(accuracy: true)
        try Report.write(resultsDirectory: directory)
        let page = try text(directory + "/index.html")
        #expect(page.contains("Headline metric: <strong>final eval accuracy</strong>, higher is better"))
        #expect(try text(directory + "/metric-by-rank.svg").contains("final eval accuracy (higher is better)"))
    }

    @Test("a sweep in which every run failed still gets a page, whose plots say they are empty")
    func allRunsFailed() throws {
        let directory = try temporaryDirectory() + "/broken"
        let columns = SummaryCSV.columns(evalMetrics: [EvalMetric(name: "loss", higherIsBetter: false)])
        var row = Dictionary(uniqueKeysWithValues: zip(RunSpec.axisColumns, ["lora-r4-s0", "lora", "4", "2r", "0", "kaiming", "fc1", "0", "false"]))
        row["status"] = "failed"
        row["reason"] = "out of memory"
        row["trainable_parameters"] = "384"
        try AtomicFile.write(CSV.line(columns) + CSV.line(columns.map { row[$0] ?? "" }), to: directory + "/summary.csv")
        try AtomicFile.write(CSV.line(MetricsCSV.experimentColumns(showingBase: false)), to: directory + "/metrics.csv")
        let written = try Report.write(resultsDirectory: directory)
        #expect(written.count == 4, "no AdaLoRA plot without rank series")
        for path in written where path.hasSuffix(".svg") {
            #expect(XMLParser(contentsOf: URL(fileURLWithPath: path))?.parse() == true, "\(path) is not XML")
        }
        #expect(try text(directory + "/metric-by-rank.svg").contains("no completed run has final_eval_loss"))
        let page = try text(directory + "/index.html")
        #expect(page.contains("1 run (1 failed)") && page.contains("out of memory"))
    }

    @Test("a missing CSV is named, with the command that writes it")
    func missingFiles() throws {
        let directory = try temporaryDirectory()
        #expect(throws: ResultsError.missingFile(path: directory + "/summary.csv", producer: "lorabench run MANIFEST")) {
            try Report.write(resultsDirectory: directory)
        }
        let results = try writeResults()
        try FileManager.default.removeItem(atPath: results + "/metrics.csv")
        do {
            try Report.write(resultsDirectory: results)
            Issue.record("a folder without metrics.csv was accepted")
        } catch {
            #expect("\(error)".contains(results + "/metrics.csv does not exist: it is written by `lorabench run MANIFEST`"))
        }
        #expect(!FileManager.default.fileExists(atPath: results + "/index.html"))
    }

    @Test("a damaged metrics.csv (a repeated column) or summary.csv (a measurement that is not a number) names file:line and the column")
    func damagedFiles() throws {
        let results = try writeResults()
        let metrics = results + "/metrics.csv", summary = results + "/summary.csv"
        let goodMetrics = try text(metrics)
        try AtomicFile.write(goodMetrics.replacingOccurrences(of: ",split,metric,", with: ",split,split,"), to: metrics)
        #expect(throws: ResultsError.malformed(path: metrics, line: 1, message: "column 'split' appears twice in the header (columns 11 and 12)")) {
            try Report.write(resultsDirectory: results)
        }
        try AtomicFile.write(goodMetrics, to: metrics)

        var lines = try text(summary).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = lines[0].split(separator: ",").map(String.init)
        var fields = lines[2].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        fields[header.firstIndex(of: "steps_completed")!] = "sixty"
        lines[2] = fields.joined(separator: ",")
        try AtomicFile.write(lines.joined(separator: "\n"), to: summary)
        #expect(throws: ResultsError.malformed(path: summary, line: 3, message: "column steps_completed is 'sixty', not a number")) {
            try Report.write(resultsDirectory: results)
        }
        #expect(!FileManager.default.fileExists(atPath: results + "/index.html"))
    }
}

@Suite("CSV reading")
struct CSVReadingTests {
    @Test("quoted fields hold commas, doubled quotes and line breaks; CRLF and blank lines are accepted")
    func quoting() throws {
        let text = "a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\r\n\n2,\"two\nlines\",\r\n"
        let table = try CSVTable(data: Data(text.utf8), path: "t.csv")
        #expect(table.header == ["a", "b", "c"])
        #expect(table.records.map(\.fields) == [["1", "x, y", "say \"hi\""], ["2", "two\nlines", ""]])
        #expect(table.records.map(\.line) == [2, 4])
    }

    @Test("malformed files fail with the file and line")
    func errors() {
        #expect(throws: ResultsError.malformed(path: "t.csv", line: 3, message: "2 fields, but the header has 3")) {
            try CSVTable(data: Data("a,b,c\n1,2,3\n1,2\n".utf8), path: "t.csv")
        }
        #expect(throws: ResultsError.malformed(path: "t.csv", line: 2, message: "a quoted field opened here is never closed")) {
            try CSVTable(data: Data("a\n\"open\n".utf8), path: "t.csv")
        }
        #expect(throws: ResultsError.malformed(path: "t.csv", line: 1, message: "no column 'step' (columns: a, b)")) {
            try CSVTable(data: Data("a,b\n".utf8), path: "t.csv").column("step")
        }
    }
}

