import Foundation
import LoRABenchTensorIO

/// A regression's answer on one held-out example (STS-B's similarity), as `predictions.csv`
/// stores it for a task whose target is a score.
public struct ScorePrediction: Equatable, Sendable {
    /// The example's position in its split as loaded (dev.tsv's order).
    public var index: Int
    /// The gold score.
    public var score: Double
    /// The model's output; nan when the model produced one.
    public var predicted: Double

    public init(index: Int, score: Double, predicted: Double) {
        self.index = index
        self.score = score
        self.predicted = predicted
    }
}

/// `runs/<id>/predictions.csv` of a regression task: `index,score,predicted` in index order (the
/// example's position in dev.tsv as loaded, its gold score, the model's output), one row per
/// example of the eval split at the final evaluation. A classifier's file is `PredictionsCSV`;
/// the header tells them apart (`RunPredictions`).
public enum ScorePredictionsCSV {
    public static let columns = ["index", "score", "predicted"]

    public static func text(_ predictions: [ScorePrediction]) -> String {
        CSV.line(columns) + predictions.map { CSV.line([String($0.index), formatNumber($0.score), formatNumber($0.predicted)]) }.joined()
    }

    /// Reads a file written by `text`; a damaged one names its line. The indices must run 0, 1,
    /// 2, … and the gold scores be finite; a predicted nan is kept (the run's metric is then nan,
    /// which summary.csv records and cells.csv counts as non-finite).
    public static func read(_ path: String) throws -> [ScorePrediction] {
        try read(CSVTable(contentsOf: path, producer: "lorabench run MANIFEST"))
    }

    static func read(_ table: CSVTable) throws -> [ScorePrediction] {
        guard table.header == columns else {
            throw ResultsError.malformed(path: table.path, line: 1, message: "expected the columns \(columns.joined(separator: ","))")
        }
        return try table.records.enumerated().map { position, record in
            let (line, fields) = record
            guard let index = Int(fields[0]), let score = Double(fields[1]), let predicted = Double(fields[2]), index >= 0, score.isFinite else {
                throw ResultsError.malformed(path: table.path, line: line, message: "expected an integer index ≥ 0, a finite score and a predicted number")
            }
            guard index == position else {
                throw ResultsError.malformed(path: table.path, line: line, message: "index \(index) where \(position) was expected: the file "
                                             + "lists every eval example once, in order (index = the example's position in the eval split)")
            }
            return ScorePrediction(index: index, score: score, predicted: predicted)
        }
    }
}

/// A run's predictions.csv of either kind, told apart by its header: a classifier's classes
/// (`PredictionsCSV`) or a regression's scores (`ScorePredictionsCSV`).
public enum RunPredictions: Equatable, Sendable {
    case classes([Prediction])
    case scores([ScorePrediction])

    /// `labelCount` checks a classifier's labels and predictions as `PredictionsCSV.read` does.
    public static func read(_ path: String, labelCount: Int? = nil) throws -> RunPredictions {
        let table = try CSVTable(contentsOf: path, producer: "lorabench run MANIFEST")
        switch table.header {
        case ScorePredictionsCSV.columns: return .scores(try ScorePredictionsCSV.read(table))
        case PredictionsCSV.columns: return .classes(try PredictionsCSV.read(path, labelCount: labelCount))
        default:
            throw ResultsError.malformed(path: path, line: 1, message: "expected the columns \(PredictionsCSV.columns.joined(separator: ",")) "
                                         + "(a classifier's) or \(ScorePredictionsCSV.columns.joined(separator: ",")) (a regression's)")
        }
    }

    public var count: Int {
        switch self {
        case let .classes(predictions): return predictions.count
        case let .scores(predictions): return predictions.count
        }
    }

    /// What the file's predictions can be scored by.
    public var kind: GLUEMetric.Kind {
        switch self {
        case .classes: return .classification
        case .scores: return .regression
        }
    }
}
