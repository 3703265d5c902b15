import Foundation
import LoRABenchKernels

/// One example: a sentence, or a sentence pair for entailment-style tasks, with its class or, for a
/// task scored by a real number (STS-B), its score.
public struct GLUEExample: Equatable, Sendable {
    public var text: String
    public var textPair: String?
    /// The class, in 0..<labelCount; 0 for a task with a score target (its one output).
    public var label: Int
    /// The gold score of a task with a score target (STS-B's similarity, 0 to 5); nil for a class label.
    public var score: Double?

    public init(text: String, textPair: String? = nil, label: Int, score: Double? = nil) {
        self.text = text
        self.textPair = textPair
        self.label = label
        self.score = score
    }
}

/// What a task learns from: the last column of its TSV files.
public enum GLUETarget: Sendable, Hashable {
    /// A `label` column: an integer class in 0..<labelCount.
    case label
    /// A `score` column: a real number in the range (STS-B: similarity from 0 to 5).
    case score(ClosedRange<Double>)

    /// The column's name in the files' header.
    public var column: String {
        switch self {
        case .label: return "label"
        case .score: return "score"
        }
    }
}

/// A GLUE task whose copy lives under the project's `Data/<name>/` folder. The tasks themselves
/// are plug-ins of the Experiments floor (`Tasks/GLUE/`), one file each.
///
/// The task states the column it learns from (`target`); its files' header says whether the text
/// is one `sentence` or a `sentence1`, `sentence2` pair, so the loader needs no list of tasks.
public struct GLUETask: Sendable, Hashable {
    /// The folder under `Data/` and the manifest's `task:` name.
    public let name: String
    /// Labels are 0..<labelCount. A task with a score target has one output: labelCount 1, and
    /// every example's label is 0.
    public let labelCount: Int
    /// The last column of the files: a class label (SST-2, MRPC, …) or a score (STS-B).
    public let target: GLUETarget

    public init(name: String, labelCount: Int, target: GLUETarget = .label) {
        self.name = name
        self.labelCount = labelCount
        self.target = target
    }
}

public enum GLUESplit: String, CaseIterable, Sendable {
    case train, dev
}

/// Errors reading a GLUE TSV file; each names the file (and the line, when one is at fault).
public enum GLUEError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    /// `targetColumn` is the last column the task expects (`label` or `score`).
    case badHeader(path: String, header: String, targetColumn: String)
    case badRow(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read the TSV file: \(reason)"
        case let .badHeader(path, header, target):
            return "\(path): header '\(header)' is neither 'sentence<TAB>\(target)' nor 'sentence1<TAB>sentence2<TAB>\(target)'"
        case let .badRow(path, line, reason): return "\(path):\(line): \(reason)"
        }
    }
}

/// Loader for the GLUE copies in `Data/<task>/<split>.tsv`.
///
/// The format is the one `Data/README.md` states: a header line, then fields split on single
/// TABs with no quoting at all (quotes are literal text, so a CSV reader would corrupt rows).
/// The header decides the text columns, `sentence` or `sentence1, sentence2`; the last column is
/// the task's target, `label` or `score`.
public enum GLUE {
    public static func path(_ task: GLUETask, split: GLUESplit, in dataDirectory: String) -> String {
        dataDirectory + "/" + task.name + "/" + split.rawValue + ".tsv"
    }

    /// The examples of one split, in file order; `maxExamples` keeps the first ones (a fixed
    /// subset, so that small runs are comparable).
    public static func load(_ task: GLUETask, split: GLUESplit, from dataDirectory: String, maxExamples: Int? = nil) throws -> [GLUEExample] {
        try loadTSV(path: path(task, split: split, in: dataDirectory), target: task.target, labelCount: task.labelCount,
                    maxExamples: maxExamples)
    }

    /// The examples of one file whose last column is `target`: a label in 0..<labelCount, or a
    /// score in the target's range (the example's label is then 0).
    public static func loadTSV(path: String, target: GLUETarget = .label, labelCount: Int = 2,
                               maxExamples: Int? = nil) throws -> [GLUEExample] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw GLUEError.unreadable(path: path, reason: error.localizedDescription)
        }
        // A CRLF file's "\r\n" is one Character, so splitting on "\n" alone would leave it one line.
        var lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard let header = lines.first else { throw GLUEError.badHeader(path: path, header: "", targetColumn: target.column) }
        let columns = header.split(separator: "\t", omittingEmptySubsequences: false)
        let isPair: Bool
        switch columns.map(String.init) {
        case ["sentence", target.column]: isPair = false
        case ["sentence1", "sentence2", target.column]: isPair = true
        default: throw GLUEError.badHeader(path: path, header: excerpt(header), targetColumn: target.column)
        }

        var examples: [GLUEExample] = []
        for (offset, line) in lines.dropFirst().enumerated() {
            if let maxExamples, examples.count >= maxExamples { break }
            let lineNumber = offset + 2
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == columns.count else {
                throw GLUEError.badRow(path: path, line: lineNumber, reason: "\(fields.count) fields, expected \(columns.count)")
            }
            let targetField = fields[fields.count - 1]
            var example = GLUEExample(text: String(fields[0]), textPair: isPair ? String(fields[1]) : nil, label: 0)
            switch target {
            case .label:
                // A label past the task's classes would index past the head's logits.
                guard let label = Int(targetField), (0..<labelCount).contains(label) else {
                    let allowed = labelCount == 2 ? "0 or 1" : "an integer from 0 to \(labelCount - 1)"
                    throw GLUEError.badRow(path: path, line: lineNumber, reason: "label '\(excerpt(targetField))' is not \(allowed)")
                }
                example.label = label
            case let .score(range):
                // Double("nan") parses, but no range contains it.
                guard let score = Double(targetField), range.contains(score) else {
                    throw GLUEError.badRow(path: path, line: lineNumber, reason: "score '\(excerpt(targetField))' is not a number from "
                                           + "\(range.lowerBound) to \(range.upperBound)")
                }
                example.score = score
            }
            examples.append(example)
        }
        return examples
    }
}

/// At most the first 80 characters of a line, for an error message: a damaged file can make one
/// "line" megabytes long.
private func excerpt(_ text: Substring) -> String {
    let limit = 80
    return text.count <= limit ? String(text) : text.prefix(limit) + "… (\(text.count) characters)"
}

/// One example as a model reads it: token ids, BERT's segment ids (zeros for a single sentence,
/// and for a model without segments), and the label.
public typealias EncodedExample = (inputIds: [Int], tokenTypeIds: [Int], label: Int)

extension WordPieceTokenizer {
    /// `[CLS] text [SEP]`, or `[CLS] text [SEP] pair [SEP]` with segment ids, at most `maxLength` tokens.
    public func encode(_ example: GLUEExample, maxLength: Int) -> EncodedExample {
        if let pair = example.textPair {
            let encoding = encodePair(example.text, pair, maxLength: maxLength)
            return (encoding.inputIds, encoding.tokenTypeIds, example.label)
        }
        let ids = encode(example.text, maxLength: maxLength)
        return (ids, Array(repeating: 0, count: ids.count), example.label)
    }
}

/// A padded batch of token ids, row-major `[batchSize, seqLen]`.
public struct TokenBatch: Equatable, Sendable {
    public var inputIds: [Int]
    public var tokenTypeIds: [Int]
    /// 1 for a real token, 0 for padding.
    public var attentionMask: [Int]
    public var labels: [Int]
    public var batchSize: Int
    public var seqLen: Int
    /// Each example's gold score for a task scored by a real number (STS-B); empty otherwise.
    public var scores: [Float] = []
}

extension TokenBatch {
    /// `sequences` padded to the longest one: ids with `padId`, token types with 0, mask 0.
    public init(padding sequences: [EncodedExample], padId: Int) {
        let seqLen = sequences.map(\.inputIds.count).max() ?? 0
        self.init(inputIds: [], tokenTypeIds: [], attentionMask: [], labels: [], batchSize: sequences.count, seqLen: seqLen)
        inputIds.reserveCapacity(sequences.count * seqLen)
        tokenTypeIds.reserveCapacity(sequences.count * seqLen)
        attentionMask.reserveCapacity(sequences.count * seqLen)
        for sequence in sequences {
            let padding = seqLen - sequence.inputIds.count
            inputIds += sequence.inputIds + Array(repeating: padId, count: padding)
            tokenTypeIds += sequence.tokenTypeIds + Array(repeating: 0, count: padding)
            attentionMask += Array(repeating: 1, count: sequence.inputIds.count) + Array(repeating: 0, count: padding)
            labels.append(sequence.label)
        }
    }
}

/// Cuts tokenized examples into padded batches.
///
/// Each batch is padded only to its own longest sequence, so short SST-2 phrases do not pay for
/// the longest review. With `bucketByLength`, examples are sorted by length within chunks of
/// `bucketBatches` batches, which makes batches nearly uniform in length (less padding), and the
/// batch order is then shuffled so that training does not see lengths in order. Everything
/// random comes from `seed` and the epoch number, so a run is reproducible.
public struct Batcher: Sendable {
    public private(set) var batchSize: Int
    public let shuffle: Bool
    public let bucketByLength: Bool
    public let bucketBatches: Int
    public private(set) var seed: UInt64
    public let padId: Int

    private let encoded: [EncodedExample]
    /// The examples' gold scores (a regression task), else nil.
    private let scores: [Float]?

    /// Batches of examples a model's tokenizer has already encoded, padded with `padId`; with
    /// `scores` (one per example) each batch carries its examples' scores.
    public init(encoded: [EncodedExample], scores: [Float]? = nil, padId: Int, batchSize: Int, shuffle: Bool,
                bucketByLength: Bool = false, bucketBatches: Int = 50, seed: UInt64 = 0) {
        precondition(batchSize > 0 && bucketBatches > 0, "batchSize and bucketBatches must be positive")
        precondition(scores.map { $0.count == encoded.count } ?? true, "one score per example")
        self.scores = scores
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.bucketByLength = bucketByLength
        self.bucketBatches = bucketBatches
        self.seed = seed
        self.padId = padId
        self.encoded = encoded
    }

    /// Tokenizes every example once, truncated to `maxLength` tokens including `[CLS]`/`[SEP]`.
    public init(examples: [GLUEExample], tokenizer: WordPieceTokenizer, batchSize: Int, maxLength: Int = 128,
                shuffle: Bool, bucketByLength: Bool = false, bucketBatches: Int = 50, seed: UInt64 = 0) {
        self.init(encoded: examples.map { tokenizer.encode($0, maxLength: maxLength) }, padId: tokenizer.padId, batchSize: batchSize,
                  shuffle: shuffle, bucketByLength: bucketByLength, bucketBatches: bucketBatches, seed: seed)
    }

    /// The same tokenized examples cut with another batch size and seed, so that runs of a sweep
    /// share one tokenization.
    public func with(batchSize: Int, seed: UInt64) -> Batcher {
        precondition(batchSize > 0, "batchSize must be positive")
        var copy = self
        copy.batchSize = batchSize
        copy.seed = seed
        return copy
    }

    public var exampleCount: Int { encoded.count }

    /// Batches per epoch; the last one may be smaller than `batchSize`.
    public var batchCount: Int { (encoded.count + batchSize - 1) / batchSize }

    /// The batches of one epoch: the same `seed` and `epoch` give the same batches.
    public func batches(epoch: Int = 0) -> [TokenBatch] {
        batchMembers(epoch: epoch).map(makeBatch)
    }

    /// Which examples (by their index in `examples`) make up each batch of `batches(epoch:)`,
    /// in the same order: what lets an evaluation report each prediction against its example.
    public func batchMembers(epoch: Int = 0) -> [[Int]] {
        var rng = SplitMix64(seed: seed).derived("batcher epoch \(epoch)")
        var order = Array(encoded.indices)
        if shuffle { Self.shuffle(&order, using: &rng) }
        var groups: [ArraySlice<Int>] = []
        if bucketByLength {
            let chunkSize = batchSize * bucketBatches
            for chunkStart in stride(from: 0, to: order.count, by: chunkSize) {
                // Sorting positions, not lengths alone, keeps ties in their shuffled order.
                let chunk = order[chunkStart..<min(chunkStart + chunkSize, order.count)]
                    .enumerated()
                    .sorted { (encoded[$0.element].inputIds.count, $0.offset) < (encoded[$1.element].inputIds.count, $1.offset) }
                    .map(\.element)
                groups += stride(from: 0, to: chunk.count, by: batchSize).map { chunk[$0..<min($0 + batchSize, chunk.count)] }
            }
            if shuffle { Self.shuffle(&groups, using: &rng) }
        } else {
            groups = stride(from: 0, to: order.count, by: batchSize).map { order[$0..<min($0 + batchSize, order.count)] }
        }
        return groups.map(Array.init)
    }

    private func makeBatch(_ members: [Int]) -> TokenBatch {
        var batch = TokenBatch(padding: members.map { encoded[$0] }, padId: padId)
        if let scores { batch.scores = members.map { scores[$0] } }
        return batch
    }

    /// Fisher–Yates with the generator's raw output, written out because the standard library's
    /// `shuffle(using:)` does not promise the same permutation across Swift versions.
    private static func shuffle<T>(_ items: inout [T], using rng: inout SplitMix64) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            items.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
    }
}
