"""A brain that sends reply audio far faster than real time: the speaker's buffer holds at most
`audio.playback.max_buffer`, then tetherd stops reading the socket (TCP back-pressure, nothing
dropped) and reads again as the speaker drains; its own not-reading is not mistaken for a dead
peer. Issue: hostile inputs never stall or lock out tetherd (bounded downlink)."""

import threading

from audio import Format, Rig, channel, counter_pcm, decode_counter
from conftest import API_KEY, rss_kib, wait_until
from peers import PythonPeer


def test_a_torrent_of_reply_audio_is_played_whole_in_order_with_bounded_memory(daemon_factory, tmp_path):
    peer = PythonPeer(api_key=API_KEY)
    rig = Rig(str(tmp_path / "rig"), capture=Format(24000, 1, 20), playback=Format(24000, 1, 20))
    rig.start(lead_ms=0)
    try:
        d = daemon_factory({
            "upstream": {"url": peer.url("/pcm"), "protocol": "pcm-stream", "ping_interval": "1s"},
            "audio": {"capture": {"device": "tether_capture"}, "playback": {"device": "tether_playback", "max_buffer": "2s"},
                      "echo": "none", "volume": 100},
        }, env=rig.env).start()
        d.wait_state("live")
        events = d.events(["session"])
        seconds = 12
        reply = counter_pcm(1, 24000 * seconds // 2)  # every sample pair numbered
        c = peer.latest()
        rss_before = rss_kib(d.pid)

        def torrent():
            # 3 s at once (so the speaker never waits for this test's own sender), then 100 ms
            # messages as fast as TCP takes them.
            peer.send(c, reply[:144000])
            for offset in range(144000, len(reply), 4800):
                peer.send(c, reply[offset:offset + 4800])

        sender = threading.Thread(target=torrent, daemon=True)
        sender.start()
        paused = wait_until(lambda: d.status()["session"]["downlink_paused"], 5, what="reading to pause")
        assert paused
        queued = d.status()["audio"]["playback"]
        # At most what was read before reading paused: the first 3 s message (more than the
        # 2 s limit by itself: a message is never split) and the 100 ms ones a read brought.
        assert queued["queued_ms"] <= 3000 + 1000, queued
        wait_until(lambda: not sender.is_alive(), seconds + 10, what="the brain to get everything out")
        try:
            wait_until(lambda: reply in channel(rig.played(), 1), seconds + 5, interval=0.2, what="the whole reply at the speaker")
        except AssertionError:
            heard = [n for n in decode_counter(channel(rig.played(), 1)) if n is not None]
            breaks = [(a, b) for a, b in zip(heard, heard[1:]) if b != a + 1][:8]
            raise AssertionError(f"reply altered: {len(heard)} of {len(reply) // 4} numbered pairs heard, breaks {breaks}, "
                                 f"status {d.status()['audio']['playback']}, {d.status()['session']['counters']}") from None
        status = d.status()
        assert status["state"] == "live"
        assert status["audio"]["playback"]["dropped_ms"] == 0, status["audio"]["playback"]
        assert status["session"]["counters"]["downlink_pauses"] >= 1
        assert not events.all("session.lost") and not events.all("link.blip"), events.all()
        assert len(peer.connections) == 1, "tetherd reconnected: it took its own pause for a dead peer"
        print(f"downlink: {seconds} s of reply sent as fast as TCP takes it, max_buffer 2 s: RSS {rss_before} -> {rss_kib(d.pid)} KiB, "
              f"{status['session']['counters']['downlink_pauses']} pauses")
        assert rss_kib(d.pid) - rss_before < 8 * 1024, (rss_before, rss_kib(d.pid))
    finally:
        rig.stop()
        peer.close()
