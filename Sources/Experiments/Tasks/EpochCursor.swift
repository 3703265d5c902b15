/// Where a run is in its training data: epochs of batches, each epoch's batches drawn again from
/// the run's seed when it starts, so a checkpoint needs two numbers to resume with the batches
/// it would have seen ([epochs started, batches taken from the current one]).
package struct EpochCursor<Batch> {
    private let batchesOfEpoch: (Int) -> [Batch]
    private var epoch = 0
    private var cursor = 0
    private var batches: [Batch] = []

    /// `batchesOfEpoch(e)`: epoch e's batches, the same for the same e.
    package init(batchesOfEpoch: @escaping (Int) -> [Batch]) {
        self.batchesOfEpoch = batchesOfEpoch
    }

    /// The next batch of the current epoch; a used-up epoch starts the next one.
    package mutating func next() -> Batch {
        if cursor == batches.count {
            batches = batchesOfEpoch(epoch)
            epoch += 1
            cursor = 0
        }
        cursor += 1
        return batches[cursor - 1]
    }

    package var position: [UInt64] { [UInt64(epoch), UInt64(cursor)] }

    package mutating func restore(_ position: [UInt64]) throws {
        let expected = "[epoch, cursor] with cursor within the epoch's batches"
        guard position.count == 2 else { throw DataPositionError(found: position, expected: expected) }
        let (epoch, cursor) = (Int(position[0]), Int(position[1]))
        let batches = epoch > 0 ? batchesOfEpoch(epoch - 1) : []
        guard cursor <= batches.count else { throw DataPositionError(found: position, expected: expected) }
        (self.epoch, self.batches, self.cursor) = (epoch, batches, cursor)
    }
}
