/// The audio engine as the session sees it: where response audio goes and how barge-in
/// silences it. Implemented by `AudioEngine`; absent when tetherd runs without audio.
public protocol SessionAudio: AnyObject, Sendable {
    func enqueuePlayback(itemID: String?, pcm: [UInt8])
    func finishItem(itemID: String?)
    /// Silences playback within one period and discards queued audio; returns the item that
    /// was playing and how many of its milliseconds really reached the device.
    func bargeIn() -> (itemID: String?, playedMs: Int)?
    /// Reply audio queued and not yet played (downlink flow control).
    var playbackQueuedMs: Int { get }
    /// The speaker is silent (a rotation waits for that).
    var speakerIdle: Bool { get }
}
