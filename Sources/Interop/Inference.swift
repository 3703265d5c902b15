import LoRABenchData
import LoRABenchKernels
import LoRABenchTensorIO

/// An adapted model's outputs for a batch of texts (`lorabench infer`, and what
/// `Interop/check_with_peft.py` compares with peft's).
public struct Inference {
    /// The texts tokenized ([CLS] … [SEP]) and padded to the longest.
    public var batch: TokenBatch
    /// last_hidden_state [B·T, C].
    public var hiddenStates: Matrix
    /// [B, labels] when the adapter carries a trained head.
    public var logits: Matrix?

    /// The label with the highest logit per text; nil for a text whose logits are not all finite
    /// (a diverged adapter), and nil for every text without a head.
    public var predictions: [Int?] {
        guard let logits else { return Array(repeating: nil, count: batch.batchSize) }
        return (0..<logits.rows).map { row in
            let scores = (0..<logits.cols).map { logits[row, $0] }
            guard scores.allSatisfy(\.isFinite), let best = scores.indices.max(by: { scores[$0] < scores[$1] }) else { return nil }
            return best
        }
    }
}

extension Inference {
    /// The tensors of `infer --out` for `count` texts padded to `sequenceLength` tokens, a file
    /// written batch by batch (`SafetensorsWriter`): input_ids, attention_mask (int64) [B, T],
    /// last_hidden_state [B, T, C] and, with a head, logits [B, labels].
    public static func layout(count: Int, sequenceLength: Int, hiddenSize: Int, labels: Int?) -> [SafetensorsWriter.Tensor] {
        [SafetensorsWriter.Tensor(name: "input_ids", dtype: .i64, shape: [count, sequenceLength]),
         SafetensorsWriter.Tensor(name: "attention_mask", dtype: .i64, shape: [count, sequenceLength]),
         SafetensorsWriter.Tensor(name: "last_hidden_state", dtype: .f32, shape: [count, sequenceLength, hiddenSize])]
            + (labels.map { [SafetensorsWriter.Tensor(name: "logits", dtype: .f32, shape: [count, $0])] } ?? [])
    }

    /// Writes this batch's rows as rows `first…` of a file laid out by `layout`.
    public func write(to writer: SafetensorsWriter, firstRow first: Int) throws {
        try writer.write("input_ids", ints: batch.inputIds, at: first * batch.seqLen)
        try writer.write("attention_mask", ints: batch.attentionMask, at: first * batch.seqLen)
        try writer.write("last_hidden_state", floats: hiddenStates.storage, at: first * batch.seqLen * hiddenStates.cols)
        if let logits { try writer.write("logits", floats: logits.storage, at: first * logits.cols) }
    }
}

extension AdaptedModel {
    /// Runs `texts` as one batch, each truncated to `maxLength` tokens ([CLS] and [SEP] included)
    /// and padded to the longest, or to `paddedLength` when that is longer (the batches of one
    /// output file share a length).
    public func infer(_ texts: [String], tokenizer: WordPieceTokenizer, maxLength: Int, paddedLength: Int = 0) throws -> Inference {
        let sequences = texts.map { text -> (inputIds: [Int], tokenTypeIds: [Int], label: Int) in
            let ids = tokenizer.encode(text, maxLength: maxLength)
            return (ids, Array(repeating: 0, count: ids.count), 0)
        }
        let batch = TokenBatch(padding: sequences, padId: tokenizer.padId).padded(to: paddedLength, padId: tokenizer.padId)
        let hidden = try encoder.encode(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, batchSize: batch.batchSize)
        let logits = hasHead ? try encoder.logits(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, batchSize: batch.batchSize) : nil
        return Inference(batch: batch, hiddenStates: hidden, logits: logits)
    }
}

private extension TokenBatch {
    /// Every row padded on to `length` tokens (the pad id, mask 0); unchanged when already as long.
    func padded(to length: Int, padId: Int) -> TokenBatch {
        guard length > seqLen else { return self }
        var padded = self
        let extra = length - seqLen
        padded.inputIds = []
        padded.tokenTypeIds = []
        padded.attentionMask = []
        for row in 0..<batchSize {
            let tokens = row * seqLen..<(row + 1) * seqLen
            padded.inputIds += inputIds[tokens] + Array(repeating: padId, count: extra)
            padded.tokenTypeIds += tokenTypeIds[tokens] + Array(repeating: 0, count: extra)
            padded.attentionMask += attentionMask[tokens] + Array(repeating: 0, count: extra)
        }
        padded.seqLen = length
        return padded
    }
}
