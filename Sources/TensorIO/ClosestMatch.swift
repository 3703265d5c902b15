/// The allowed word a typo most likely meant: the single nearest by edit distance (at most a
/// third of the word's letters, never more than 3), else the one word that starts with it or
/// that it starts with (`energy` → `energy_threshold`). nil when nothing, or more than one
/// word, is that close.
package func closestMatch(to word: String, in candidates: [String]) -> String? {
    let typed = word.lowercased()
    let limit = min(3, max(1, typed.count / 3))
    let scored = candidates.map { ($0, editDistance(typed, $0.lowercased())) }.filter { $0.1 <= limit }
    if let best = scored.map(\.1).min() {
        let nearest = scored.filter { $0.1 == best }
        return nearest.count == 1 ? nearest[0].0 : nil
    }
    guard typed.count >= 3 else { return nil }
    let extensions = candidates.filter { $0.lowercased().hasPrefix(typed) || typed.hasPrefix($0.lowercased()) }
    return extensions.count == 1 ? extensions[0] : nil
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring letters (`stesp` → `steps`) each cost 1.
package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
        }
    }
    return d[a.count][b.count]
}
