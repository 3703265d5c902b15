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

    /// input_ids, attention_mask (int64) [B, T], last_hidden_state [B, T, C], logits [B, labels].
    public var tensors: [String: TensorToWrite] {
        let shape = [batch.batchSize, batch.seqLen]
        var tensors = [
            "input_ids": TensorToWrite(ints: batch.inputIds, shape: shape),
            "attention_mask": TensorToWrite(ints: batch.attentionMask, shape: shape),
            "last_hidden_state": TensorToWrite(hiddenStates, shape: shape + [hiddenStates.cols]),
        ]
        if let logits { tensors["logits"] = TensorToWrite(logits) }
        return tensors
    }
}

extension AdaptedModel {
    /// Runs `texts`, each truncated to `maxLength` tokens ([CLS] and [SEP] included).
    public func infer(_ texts: [String], tokenizer: WordPieceTokenizer, maxLength: Int) throws -> Inference {
        let sequences = texts.map { text -> (inputIds: [Int], tokenTypeIds: [Int], label: Int) in
            let ids = tokenizer.encode(text, maxLength: maxLength)
            return (ids, Array(repeating: 0, count: ids.count), 0)
        }
        let batch = TokenBatch(padding: sequences, padId: tokenizer.padId)
        let hidden = try encoder.encode(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, batchSize: batch.batchSize)
        let logits = hasHead ? try encoder.logits(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, batchSize: batch.batchSize) : nil
        return Inference(batch: batch, hiddenStates: hidden, logits: logits)
    }
}
