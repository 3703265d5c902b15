import Foundation
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchData
import LoRABenchTestSupport

private let dataDirectory = Fixtures.dataDirectory

/// Runs `body` with a fresh temporary directory and removes it afterwards.
private func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-data-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    try body(url.path)
}

@Suite("GLUE data")
struct GLUETests {
    @Test("SST-2 dev: 872 sentences, 428 negative and 444 positive")
    func sst2Dev() throws {
        let examples = try GLUE.load(.sst2, split: .dev, from: dataDirectory)
        #expect(examples.count == 872)
        #expect(examples.filter { $0.label == 0 }.count == 428)
        #expect(examples.filter { $0.label == 1 }.count == 444)
        #expect(examples.allSatisfy { $0.textPair == nil && !$0.text.isEmpty })
        #expect(examples[0] == GLUEExample(text: "it 's a charming and often affecting journey . ", label: 1))
    }

    @Test("RTE dev has sentence pairs; CoLA dev has single sentences")
    func otherTasks() throws {
        let rte = try GLUE.load(.rte, split: .dev, from: dataDirectory)
        #expect(rte.count == 277)
        #expect(rte.allSatisfy { $0.textPair != nil && [0, 1].contains($0.label) })
        let cola = try GLUE.load(.cola, split: .dev, from: dataDirectory)
        #expect(cola.count == 1043)
        #expect(cola.allSatisfy { $0.textPair == nil && [0, 1].contains($0.label) })
    }

    @Test("maxExamples keeps the first examples in file order")
    func maxExamples() throws {
        let all = try GLUE.load(.sst2, split: .dev, from: dataDirectory)
        let first = try GLUE.load(.sst2, split: .dev, from: dataDirectory, maxExamples: 10)
        #expect(first == Array(all.prefix(10)))
        #expect(try GLUE.load(.sst2, split: .dev, from: dataDirectory, maxExamples: 5000).count == 872)
    }

    @Test("malformed files are errors naming the file and line")
    func malformed() throws {
        try withTemporaryDirectory { directory in
            let badHeader = directory + "/header.tsv"
            try AtomicFile.write("text,label\n", to: badHeader)
            #expect { try GLUE.loadTSV(path: badHeader) } throws: { String(describing: $0).contains(badHeader) }

            let badLabel = directory + "/label.tsv"
            try AtomicFile.write("sentence\tlabel\ngood\t1\nbad\tpositive\n", to: badLabel)
            #expect { try GLUE.loadTSV(path: badLabel) } throws: { String(describing: $0).hasPrefix("\(badLabel):3:") }

            let missing = directory + "/missing.tsv"
            #expect { try GLUE.loadTSV(path: missing) } throws: { String(describing: $0).contains(missing) }
        }
    }
}

@Suite("Batcher")
struct BatcherTests {
    private func sst2Batcher(shuffle: Bool, bucket: Bool, seed: UInt64 = 7, batchSize: Int = 32) throws -> Batcher {
        let examples = try GLUE.load(.sst2, split: .dev, from: dataDirectory)
        return Batcher(examples: examples, tokenizer: try makeTinyTokenizer(), batchSize: batchSize, maxLength: 64,
                       shuffle: shuffle, bucketByLength: bucket, seed: seed)
    }

    @Test("pads each batch to its longest row with id 0 and mask 0")
    func padding() throws {
        let batcher = try sst2Batcher(shuffle: true, bucket: false)
        let batches = batcher.batches(epoch: 0)
        #expect(batches.count == batcher.batchCount)
        #expect(batches.map(\.batchSize) == Array(repeating: 32, count: 27) + [8])
        for batch in batches {
            #expect(batch.inputIds.count == batch.batchSize * batch.seqLen)
            #expect(batch.tokenTypeIds == Array(repeating: 0, count: batch.batchSize * batch.seqLen))
            #expect(batch.labels.count == batch.batchSize)
            var longest = 0
            for row in 0..<batch.batchSize {
                let ids = batch.inputIds[(row * batch.seqLen)..<((row + 1) * batch.seqLen)]
                let mask = batch.attentionMask[(row * batch.seqLen)..<((row + 1) * batch.seqLen)]
                let length = mask.reduce(0, +)
                longest = max(longest, length)
                #expect(Array(mask) == Array(repeating: 1, count: length) + Array(repeating: 0, count: batch.seqLen - length))
                #expect(ids.first == 2 && ids[ids.startIndex + length - 1] == 3)
                #expect(ids.suffix(batch.seqLen - length).allSatisfy { $0 == 0 })
                #expect(length <= 64)
            }
            #expect(longest == batch.seqLen)
        }
    }

    @Test("every example appears once per epoch")
    func coverage() throws {
        let labels = try GLUE.load(.sst2, split: .dev, from: dataDirectory).map(\.label)
        for (shuffle, bucket) in [(false, false), (true, false), (true, true), (false, true)] {
            let batched = try sst2Batcher(shuffle: shuffle, bucket: bucket).batches(epoch: 1).flatMap(\.labels)
            #expect(batched.sorted() == labels.sorted())
        }
        let inOrder = try sst2Batcher(shuffle: false, bucket: false).batches().flatMap(\.labels)
        #expect(inOrder == labels)
    }

    @Test("the same seed and epoch give the same batches; another seed or epoch does not")
    func determinism() throws {
        for bucket in [false, true] {
            let first = try sst2Batcher(shuffle: true, bucket: bucket, seed: 11)
            let again = try sst2Batcher(shuffle: true, bucket: bucket, seed: 11)
            let other = try sst2Batcher(shuffle: true, bucket: bucket, seed: 12)
            #expect(first.batches(epoch: 0) == again.batches(epoch: 0))
            #expect(first.batches(epoch: 3) == again.batches(epoch: 3))
            #expect(first.batches(epoch: 0) != other.batches(epoch: 0))
            #expect(first.batches(epoch: 0) != first.batches(epoch: 1))
        }
    }

    @Test("length bucketing cuts padding")
    func bucketing() throws {
        func padding(_ batches: [TokenBatch]) -> Int {
            batches.reduce(0) { $0 + $1.attentionMask.filter { $0 == 0 }.count }
        }
        let plain = padding(try sst2Batcher(shuffle: true, bucket: false, batchSize: 16).batches(epoch: 0))
        let bucketed = padding(try sst2Batcher(shuffle: true, bucket: true, batchSize: 16).batches(epoch: 0))
        #expect(bucketed * 4 < plain, "padding: \(bucketed) bucketed vs \(plain) plain")
    }

    @Test("sentence pairs carry token type 1 on the second segment")
    func pairs() throws {
        let examples = try GLUE.load(.rte, split: .dev, from: dataDirectory, maxExamples: 8)
        let batch = Batcher(examples: examples, tokenizer: try makeTinyTokenizer(), batchSize: 8, maxLength: 32, shuffle: false)
            .batches()[0]
        for row in 0..<batch.batchSize {
            let ids = Array(batch.inputIds[(row * batch.seqLen)..<((row + 1) * batch.seqLen)])
            let types = Array(batch.tokenTypeIds[(row * batch.seqLen)..<((row + 1) * batch.seqLen)])
            let length = batch.attentionMask[(row * batch.seqLen)..<((row + 1) * batch.seqLen)].reduce(0, +)
            let firstSep = try #require(ids.firstIndex(of: 3))
            #expect(length <= 32)
            #expect(types[...firstSep].allSatisfy { $0 == 0 })
            #expect(types[(firstSep + 1)..<length].allSatisfy { $0 == 1 })
            #expect(ids[length - 1] == 3)
        }
    }
}

/// Issue 25, U8: a train.tsv saved with Windows line ends.
@Suite struct GLUELineEndTests {
    @Test func aCRLFFileLoadsLikeAnLFOne() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/train.tsv"
            try "sentence\tlabel\r\ngood film\t1\r\nbad film\t0\r\n".write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try GLUE.loadTSV(path: path) == [GLUEExample(text: "good film", label: 1), GLUEExample(text: "bad film", label: 0)])
        }
    }

    @Test func anErrorQuotesAtMostOneShortLine() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/train.tsv"
            try ("text\tscore\r\n" + String(repeating: "a long line\t1\r\n", count: 10_000)).write(toFile: path, atomically: true, encoding: .utf8)
            let header = try #require(throws: GLUEError.self) { try GLUE.loadTSV(path: path) }
            #expect(header.description == "\(path): header 'text\tscore' is neither 'sentence<TAB>label' nor 'sentence1<TAB>sentence2<TAB>label'")

            try (String(repeating: "x", count: 100_000) + "\tlabel\n").write(toFile: path, atomically: true, encoding: .utf8)
            let long = try #require(throws: GLUEError.self) { try GLUE.loadTSV(path: path) }
            #expect(long.description.count < 300 && long.description.contains("… (100006 characters)"))
        }
    }
}
