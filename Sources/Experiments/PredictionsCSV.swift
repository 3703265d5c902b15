import Foundation
import LoRABenchTensorIO
import LoRABenchVariants

/// `runs/<id>/predictions.csv`: a classifier's answer on every example of the eval split at its
/// final evaluation, `index,label,predicted,probability` in index order (the example's position
/// in dev.tsv as loaded, its gold label, the predicted label, and the softmax probability of the
/// prediction). `lorabench compare` pairs two runs' files example by example.
public enum PredictionsCSV {
    public static let columns = ["index", "label", "predicted", "probability"]

    public static func text(_ predictions: [Prediction]) -> String {
        CSV.line(columns) + predictions.map {
            CSV.line([String($0.index), String($0.label), String($0.predicted), formatNumber($0.probability)])
        }.joined()
    }

    /// Reads a file written by `text`; a missing file names the command that writes it, and a
    /// damaged one names its line.
    public static func read(_ path: String) throws -> [Prediction] {
        let table = try CSVTable(contentsOf: path, producer: "lorabench run MANIFEST (classification tasks only)")
        guard table.header == columns else {
            throw ResultsError.malformed(path: path, line: 1, message: "expected the columns \(columns.joined(separator: ","))")
        }
        return try table.records.map { line, fields in
            guard let index = Int(fields[0]), let label = Int(fields[1]), let predicted = Int(fields[2]),
                  let probability = Double(fields[3]), index >= 0, probability >= 0, probability <= 1 else {
                throw ResultsError.malformed(path: path, line: line,
                                             message: "expected integers index ≥ 0, label, predicted and a probability in [0, 1]")
            }
            return Prediction(index: index, label: label, predicted: predicted, probability: probability)
        }
    }
}
