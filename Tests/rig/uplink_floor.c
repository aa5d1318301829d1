// The floor with the uplink (`make bench`, Tests/rig/bench.py): what capturing the microphone
// and sending it to a peer costs on the benchmark's rig with nothing else, written as lean as C
// allows, so that tetherd's CPU can be split into what its design costs and what its code does.
//
// It captures like arecord (20 ms periods, 4 periods of buffer, blocking reads) and sends every
// 40 ms batch (tetherd's uplink batch) to a TCP peer as one masked WebSocket binary frame, in
// one of two designs:
//   one-thread  the capture thread writes the socket itself;
//   hand-off    as tetherd does: the capture thread queues the batch and wakes a sender thread
//               (eventfd), which waits in epoll_wait and writes the socket.
//
// Usage: uplink_floor one-thread|hand-off DEVICE PORT. Runs until killed.
#define _GNU_SOURCE
#include <alsa/asoundlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum { RATE = 24000, PERIOD = 480, BATCH_BYTES = 2 * PERIOD * 2, HEADER = 8 };

struct frame { uint8_t bytes[HEADER + BATCH_BYTES]; };

static int peer = -1, wake = -1;
static struct frame frames[2];   // the batch being filled and the one being sent
static _Atomic int ready = -1;  // the frame the sender thread sends next

static void send_frame(const struct frame *f) {
    struct iovec iov = { (void *)f->bytes, sizeof f->bytes };
    if (writev(peer, &iov, 1) < 0) { perror("writev"); _exit(1); }
}

// A client frame: FIN + binary, masked, 16-bit length; the payload XORed with the key.
static void seal(struct frame *f) {
    static const uint8_t key[4] = { 0x12, 0x34, 0x56, 0x78 };
    f->bytes[0] = 0x82;
    f->bytes[1] = 0x80 | 126;
    f->bytes[2] = BATCH_BYTES >> 8;
    f->bytes[3] = BATCH_BYTES & 0xff;
    memcpy(f->bytes + 4, key, 4);
    for (int i = 0; i < BATCH_BYTES; i++) f->bytes[HEADER + i] ^= key[i & 3];
}

static void *sender(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "sender");
    int poller = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event interest = { .events = EPOLLIN, .data.fd = wake };
    epoll_ctl(poller, EPOLL_CTL_ADD, wake, &interest);
    for (;;) {
        struct epoll_event event;
        if (epoll_wait(poller, &event, 1, -1) <= 0) continue;
        uint64_t count;
        if (read(wake, &count, sizeof count) != sizeof count) continue;
        send_frame(&frames[ready]);
    }
    return NULL;
}

static snd_pcm_t *open_capture(const char *device) {
    snd_pcm_t *pcm;
    snd_pcm_hw_params_t *hw;
    snd_pcm_uframes_t period = PERIOD, buffer = 4 * PERIOD;
    unsigned rate = RATE;
    if (snd_pcm_open(&pcm, device, SND_PCM_STREAM_CAPTURE, 0) < 0) return NULL;
    snd_pcm_hw_params_alloca(&hw);
    snd_pcm_hw_params_any(pcm, hw);
    snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED);
    snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE);
    snd_pcm_hw_params_set_channels(pcm, hw, 1);
    snd_pcm_hw_params_set_rate_near(pcm, hw, &rate, NULL);
    snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, NULL);
    snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &buffer);
    return snd_pcm_hw_params(pcm, hw) < 0 ? NULL : pcm;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[1], "one-thread") && strcmp(argv[1], "hand-off"))) {
        fprintf(stderr, "usage: uplink_floor one-thread|hand-off DEVICE PORT\n");
        return 2;
    }
    int hand_off = !strcmp(argv[1], "hand-off");
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // as tetherd's connection
    if (connect(peer, (struct sockaddr *)&address, sizeof address) < 0) { perror("connect"); return 1; }
    if (hand_off) {
        wake = eventfd(0, EFD_CLOEXEC);
        pthread_t thread;
        pthread_create(&thread, NULL, sender, NULL);
    }
    snd_pcm_t *pcm = open_capture(argv[2]);
    if (!pcm) { fprintf(stderr, "cannot open %s\n", argv[2]); return 1; }
    for (unsigned long periods = 0;; periods++) {
        struct frame *f = &frames[(periods / 2) % 2];
        snd_pcm_sframes_t n = snd_pcm_readi(pcm, f->bytes + HEADER + (periods % 2) * PERIOD * 2, PERIOD);
        if (n < 0) { snd_pcm_recover(pcm, (int)n, 1); periods--; continue; }
        if (periods % 2 == 0) continue;
        seal(f);
        if (!hand_off) { send_frame(f); continue; }
        ready = (int)((periods / 2) % 2);
        uint64_t one = 1;
        if (write(wake, &one, sizeof one) < 0) { perror("eventfd"); return 1; }
    }
}
