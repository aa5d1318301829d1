#!/usr/bin/env python3
"""`make demo`: tetherd against the bundled mock brain (tether-mock-upstream), with file-backed
audio from the ALSA rig when the machine has no sound card. Shows the session going live, the
events a robot process sees, and a dropped connection being ridden out.

Environment: TETHER_BIN_DIR (default .build/debug), DEMO_SECONDS (default 30; 0 = until
Ctrl-C), DEMO_AUDIO=rig|card|auto (default auto)."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from alsa_rig import Format, Rig, make_speech  # noqa: E402

BIN = pathlib.Path(os.environ.get("TETHER_BIN_DIR", ".build/debug")).resolve()
SECONDS = float(os.environ.get("DEMO_SECONDS", "30"))


def say(text):
    print(f"\033[1mdemo:\033[0m {text}", flush=True)


def has_sound_card():
    try:
        cards = pathlib.Path("/proc/asound/cards").read_text()
    except OSError:
        return False
    return cards.strip() and "no soundcards" not in cards


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="tether-demo-"))
    mode = os.environ.get("DEMO_AUDIO", "auto")
    use_rig = mode == "rig" or (mode == "auto" and not has_sound_card())
    processes = []
    rig = None
    try:
        # 1. The brain: a local mock that echoes what it hears.
        mock = subprocess.Popen([str(BIN / "tether-mock-upstream"), "--port", "0", "--record", str(work / "mock"),
                                 "--api-key", "demo-key", "--quiet"], stdout=subprocess.PIPE, text=True)
        processes.append(mock)
        url = mock.stdout.readline().split()[-1]
        base = url.replace("ws://", "http://")
        say(f"mock brain listening on {url}")

        # 2. The ears and mouth.
        env = dict(os.environ)
        if use_rig:
            rig = Rig(str(work / "rig"), capture=Format(24000, 1, 20), playback=Format(24000, 1, 20))
            speech = make_speech("Hello robot. What a lovely day it is.", 24000)
            silence = bytes(2 * 24000 * 2)
            rig.start(capture_pcm=(speech + silence) * 20, lead_ms=1000)
            env.update(rig.env)
            capture, playback = "tether_capture", "tether_playback"
            say(f"no sound card: file-backed ALSA rig in {rig.dir} (speech in, {rig.playback_out} out)")
        else:
            capture = playback = "default"
            say("using the sound card (ALSA default device)")

        # 3. tetherd with an embedded demo configuration.
        key = work / "api-key"
        key.write_text("demo-key\n")
        key.chmod(0o600)
        socket_path = work / "control.sock"
        config = {
            "upstream": {"url": f"{url}/v1/realtime?model=demo", "protocol": "openai-realtime",
                         "api_key_file": str(key), "session": {"instructions": "You are a friendly robot."}},
            "audio": {"capture": {"device": capture}, "playback": {"device": playback}},
            "network": {"watch": True},
            "control": {"socket": str(socket_path), "group": None},
            "log": {"level": "info", "target": "stderr"},
        }
        (work / "tether.yaml").write_text(json.dumps(config, indent=2))
        log = open(work / "tetherd.log", "w")
        tetherd = subprocess.Popen([str(BIN / "tetherd"), "--config", str(work / "tether.yaml")], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        processes.append(tetherd)
        say(f"tetherd started (log: {work / 'tetherd.log'}, socket: {socket_path})")
        deadline = time.monotonic() + 20
        while not socket_path.exists():
            if tetherd.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tetherd did not start; see {work / 'tetherd.log'}")
            time.sleep(0.05)

        ctl = [str(BIN / "tetherctl")]
        sock = ["--socket", str(socket_path)]
        events = subprocess.Popen([*ctl, "events", "--topic", "session", "--topic", "network", "--topic", "speech",
                                   "--topic", "audio", "--topic", "error", *sock], stdout=subprocess.PIPE, text=True)
        processes.append(events)

        def show_events():
            for line in events.stdout:
                if " audio.level " in line:
                    continue
                print(f"  event  {line.rstrip()}", flush=True)

        threading.Thread(target=show_events, daemon=True).start()

        wait_live(ctl, sock, 15)
        say("session is live:")
        subprocess.run([*ctl, "status", *sock])
        time.sleep(min(8, SECONDS / 3) if SECONDS else 8)
        say("the brain drops the connection; tetherd rides it out (link.blip, no session.lost):")
        urllib.request.urlopen(urllib.request.Request(f"{base}/mock/drop", method="POST"), timeout=5).read()
        time.sleep(3)
        say("asking the brain to say something (tetherctl say):")
        subprocess.run([*ctl, "say", "Battery", "is", "at", "eighty", "percent", *sock])
        started = time.monotonic()
        while SECONDS == 0 or time.monotonic() - started < max(0, SECONDS - 14):
            time.sleep(0.5)
        say("final status:")
        subprocess.run([*ctl, "status", *sock])
        stats = json.loads(urllib.request.urlopen(f"{base}/mock/status", timeout=5).read())
        say(f"the brain received {stats.get('received_pcm_bytes', 0) / 48000:.1f} s of microphone audio "
            f"over {stats.get('connections_total', 0)} connection(s)")
        if rig:
            say(f"the speaker played {len(rig.played()) / 48000:.1f} s of audio into {rig.playback_out}")
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(processes):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if rig:
            rig.stop()
        say(f"done; files kept in {work}")


def wait_live(ctl, sock, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = subprocess.run([*ctl, "status", "--json", *sock], capture_output=True, text=True)
        if result.returncode == 0 and json.loads(result.stdout).get("state") == "live":
            return
        time.sleep(0.2)
    raise SystemExit("the session did not go live; see the tetherd log")


if __name__ == "__main__":
    main()
