import Foundation

/// Why a results file could not be read. Each message names the file; a missing file also names
/// the command that writes it.
public enum ResultsError: Error, CustomStringConvertible, Equatable {
    case missingFile(path: String, producer: String)
    case malformed(path: String, line: Int, message: String)
    case noCheckpoints(runFolder: String)

    public var description: String {
        switch self {
        case let .missingFile(path, producer):
            return "\(path) does not exist: it is written by `\(producer)`; run that first, or pass the folder it wrote (e.g. results/quickstart)"
        case let .malformed(path, line, message):
            return "\(path):\(line): \(message)"
        case let .noCheckpoints(runFolder):
            return "\(runFolder) has no checkpoints; run its manifest with training.save_every set"
        }
    }
}

/// A CSV file as RFC 4180 defines it: a header record, then records of the same width, fields
/// separated by commas, any field optionally quoted (quoted fields may hold commas, line breaks
/// and doubled quotes), lines ending in CRLF or LF. Blank lines are skipped. `CSV` writes it.
public struct CSVTable {
    public let path: String
    public let header: [String]
    /// Each record with the file line it starts on, for error messages.
    public let records: [(line: Int, fields: [String])]

    /// Reads `path`; a missing file is reported with `producer`, the command that writes it.
    public init(contentsOf path: String, producer: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ResultsError.missingFile(path: path, producer: producer)
        }
        try self.init(data: data, path: path)
    }

    /// `path` names the source in errors.
    public init(data: Data, path: String) throws {
        self.path = path
        var records = try Self.parse([UInt8](data), path: path)
        guard !records.isEmpty else { throw ResultsError.malformed(path: path, line: 1, message: "the file is empty (expected a header row)") }
        header = records.removeFirst().fields
        // A repeated name would make every lookup by name see only its first column.
        for (index, name) in header.enumerated() where header[..<index].contains(name) {
            throw ResultsError.malformed(path: path, line: 1, message: "column '\(name)' appears twice in the header (columns \(header.firstIndex(of: name)! + 1) and \(index + 1))")
        }
        for record in records where record.fields.count != header.count {
            throw ResultsError.malformed(path: path, line: record.line, message: "\(record.fields.count) fields, but the header has \(header.count)")
        }
        self.records = records
    }

    /// The index of column `name`, or an error naming the file and the columns it does have.
    public func column(_ name: String) throws -> Int {
        guard let index = header.firstIndex(of: name) else {
            throw ResultsError.malformed(path: path, line: 1, message: "no column '\(name)' (columns: \(header.joined(separator: ", ")))")
        }
        return index
    }

    private static func parse(_ bytes: [UInt8], path: String) throws -> [(line: Int, fields: [String])] {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")
        var records: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1, recordLine = 1, quoteLine = 1
        var inQuotes = false, wasQuoted = false
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            wasQuoted = false
        }
        func endRecord() {
            let blank = fields.isEmpty && field.isEmpty && !wasQuoted
            endField()
            if !blank { records.append((recordLine, fields)) }
            fields = []
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if inQuotes {
                if byte == quote {
                    if index < bytes.count, bytes[index] == quote {
                        field.append(quote)
                        index += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    if byte == newline { line += 1 }
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case quote:
                guard field.isEmpty, !wasQuoted else {
                    throw ResultsError.malformed(path: path, line: line, message: "a quote inside an unquoted field (quote the whole field and double inner quotes)")
                }
                inQuotes = true
                wasQuoted = true
                quoteLine = line
            case comma:
                endField()
            case carriageReturn where index < bytes.count && bytes[index] == newline:
                continue
            case newline:
                endRecord()
                line += 1
                recordLine = line
            default:
                guard !wasQuoted else {
                    throw ResultsError.malformed(path: path, line: line, message: "text after the closing quote of a field")
                }
                field.append(byte)
            }
        }
        if inQuotes { throw ResultsError.malformed(path: path, line: quoteLine, message: "a quoted field opened here is never closed") }
        if !fields.isEmpty || !field.isEmpty || wasQuoted { endRecord() }
        return records
    }
}

/// An experiment's results as the runner writes them (see `ResultsLayout`), typed for the report:
/// summary.csv (one row per run) and metrics.csv (tidy long form: axis columns, then step,
/// split, metric, value). Columns are found by name, so axes the runner adds later come along.
public struct ExperimentResults {
    /// The command that writes a results folder, for errors about a missing file.
    public static let producer = "lorabench run MANIFEST"

    /// One row of summary.csv.
    public struct Run {
        public var runID: String
        /// Every axis value by column name, as written (`variant`, `rank`, `alpha`, `seed`, …).
        public var axes: [String: String]
        public var variant: String
        public var rank: Int
        public var seed: String
        public var status: RunOutcome.Status
        public var reason: String
        /// The `final_eval_*` and `best_eval_*` columns that have a value, and the
        /// `final_validation_*` and `best_validation_*` ones when the task holds a validation split.
        public var evalMetrics: [String: Double]
        public var trainableParameters: Double
        public var wallSeconds: Double?
        /// Optimizer steps taken (a run stopped at a rung: the rung's step); nil in a summary.csv without the column.
        public var stepsCompleted: Int?
        /// The run's cost (`RunCost.columns` that have a value): training seconds, tokens per
        /// second, peak resident MB, adapter bytes; empty in a summary.csv written before them.
        public var costs: [String: Double] = [:]
    }

    /// summary.csv's cost columns, as peft's method comparison records a run's cost.
    public enum RunCost {
        public static let columns = ["training_seconds", "train_tokens_per_second", "peak_rss_mb", "adapter_bytes"]
    }

    /// One (split, metric) series of a run, e.g. (eval, loss) or (train, rank/fc1).
    public struct SeriesKey: Hashable, Sendable {
        public var split: String
        public var metric: String

        public init(split: String, metric: String) {
            self.split = split
            self.metric = metric
        }
    }

    public struct Point: Equatable, Sendable {
        public var step: Int
        public var value: Double
    }

    /// The folder's name: the runner names it after the experiment.
    public var name: String
    /// summary.csv's axis columns in file order, without `run_id`.
    public var axisNames: [String]
    /// summary.csv's `final_eval_<m>` and `final_validation_<m>` columns in file order.
    public var finalMetricColumns: [String]
    public var runs: [Run]
    /// Every run's series by run id, each sorted by step.
    public var series: [String: [SeriesKey: [Point]]]

    public static func load(directory: String) throws -> ExperimentResults {
        let layout = ResultsLayout(root: directory)
        let summary = try CSVTable(contentsOf: layout.summaryFile, producer: producer)
        let metrics = try CSVTable(contentsOf: layout.metricsFile, producer: producer)
        let (axisNames, runs) = try readSummary(summary)
        return ExperimentResults(name: URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent,
                                 axisNames: axisNames, finalMetricColumns: finalMetricColumns(summary), runs: runs,
                                 series: try readMetrics(metrics))
    }

    /// The `final_eval_<m>` and `final_validation_<m>` columns of a summary.csv.
    package static func finalMetricColumns(_ table: CSVTable) -> [String] {
        table.header.filter { $0.hasPrefix("final_eval_") || $0.hasPrefix("final_validation_") }
    }

    /// summary.csv: `run_id`, the axis columns, `status`, `reason`, then measurements.
    package static func readSummary(_ table: CSVTable) throws -> ([String], [Run]) {
        let runIDColumn = try table.column("run_id"), statusColumn = try table.column("status")
        guard runIDColumn < statusColumn else {
            throw ResultsError.malformed(path: table.path, line: 1, message: "expected run_id, then the axis columns, then status")
        }
        let axisNames = Array(table.header[(runIDColumn + 1)..<statusColumn])
        for required in ["variant", "rank", "seed"] where !axisNames.contains(required) {
            throw ResultsError.malformed(path: table.path, line: 1, message: "no axis column '\(required)' between run_id and status")
        }
        let reasonColumn = try table.column("reason")
        let parametersColumn = try table.column("trainable_parameters")
        let wallColumn = table.header.firstIndex(of: "wall_seconds"), stepsColumn = table.header.firstIndex(of: "steps_completed")
        let prefixes = ["final_eval_", "best_eval_", "final_validation_", "best_validation_"]
        let evalColumns = table.header.indices.filter { column in prefixes.contains { table.header[column].hasPrefix($0) } }
        // Every column after `reason` is a measurement: a number, or empty when it does not apply.
        let measurementColumns = (reasonColumn + 1)..<table.header.count

        let runs = try table.records.map { line, fields -> Run in
            func number(_ column: Int) throws -> Double? {
                if fields[column].isEmpty { return nil }
                guard let value = Double(fields[column]) else {
                    throw ResultsError.malformed(path: table.path, line: line, message: "column \(table.header[column]) is '\(fields[column])', not a number")
                }
                return value
            }
            for column in measurementColumns { _ = try number(column) }
            let steps = try stepsColumn.flatMap(number)
            if let steps, Int(exactly: steps) == nil {
                throw ResultsError.malformed(path: table.path, line: line, message: "steps_completed is \(fields[stepsColumn!]), not a whole number")
            }
            let axes = Dictionary(uniqueKeysWithValues: axisNames.map { ($0, fields[table.header.firstIndex(of: $0)!]) })
            guard let rank = Int(axes["rank"]!) else {
                throw ResultsError.malformed(path: table.path, line: line, message: "rank is '\(axes["rank"]!)', not an integer")
            }
            guard let status = RunOutcome.Status(rawValue: fields[statusColumn]) else {
                throw ResultsError.malformed(path: table.path, line: line,
                                             message: "status is '\(fields[statusColumn])'; allowed: "
                                             + RunOutcome.Status.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard let parameters = try number(parametersColumn) else {
                throw ResultsError.malformed(path: table.path, line: line, message: "trainable_parameters is empty")
            }
            var evalMetrics: [String: Double] = [:]
            for column in evalColumns { evalMetrics[table.header[column]] = try number(column) }
            var costs: [String: Double] = [:]
            for name in RunCost.columns { costs[name] = try table.header.firstIndex(of: name).flatMap(number) }
            return Run(runID: fields[runIDColumn], axes: axes, variant: axes["variant"]!, rank: rank, seed: axes["seed"]!,
                       status: status, reason: fields[reasonColumn], evalMetrics: evalMetrics, trainableParameters: parameters,
                       wallSeconds: try wallColumn.flatMap(number), stepsCompleted: steps.flatMap { Int(exactly: $0) }, costs: costs)
        }
        return (axisNames, runs)
    }

    /// metrics.csv: every column before `step` is an axis (run_id among them), then step, split,
    /// metric, value. Values may be nan or inf (a diverged run's last loss).
    private static func readMetrics(_ table: CSVTable) throws -> [String: [SeriesKey: [Point]]] {
        let runColumn = try table.column("run_id"), stepColumn = try table.column("step")
        let splitColumn = try table.column("split"), metricColumn = try table.column("metric")
        let valueColumn = try table.column("value")
        var series: [String: [SeriesKey: [Point]]] = [:]
        for (line, fields) in table.records {
            guard let step = Int(fields[stepColumn]) else {
                throw ResultsError.malformed(path: table.path, line: line, message: "column step is '\(fields[stepColumn])', not an integer")
            }
            guard let value = Double(fields[valueColumn]) else {
                throw ResultsError.malformed(path: table.path, line: line, message: "column value is '\(fields[valueColumn])', not a number")
            }
            series[fields[runColumn], default: [:]][SeriesKey(split: fields[splitColumn], metric: fields[metricColumn]), default: []]
                .append(Point(step: step, value: value))
        }
        for run in series.keys {
            for key in series[run]!.keys { series[run]![key]!.sort { $0.step < $1.step } }
        }
        return series
    }
}

extension ExperimentResults {
    /// A summary.csv alone (no series): what cells, selection and comparisons are computed from.
    package init(name: String, summary: CSVTable) throws {
        let (axisNames, runs) = try Self.readSummary(summary)
        self.init(name: name, axisNames: axisNames, finalMetricColumns: Self.finalMetricColumns(summary), runs: runs, series: [:])
    }
}
