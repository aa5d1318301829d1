#include "tether_speexdsp.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* The libspeexdsp functions tetherd uses, resolved once by load(). The ctl calls take a
   pointer to the value, which the wrappers below provide, so Swift passes plain integers. */
static struct {
    SpeexEchoState *(*echo_state_init)(int, int);
    void (*echo_state_destroy)(SpeexEchoState *);
    void (*echo_cancellation)(SpeexEchoState *, const int16_t *, const int16_t *, int16_t *);
    void (*echo_state_reset)(SpeexEchoState *);
    int (*echo_ctl)(SpeexEchoState *, int, void *);
    SpeexPreprocessState *(*preprocess_state_init)(int, int);
    void (*preprocess_state_destroy)(SpeexPreprocessState *);
    int (*preprocess_run)(SpeexPreprocessState *, int16_t *);
    int (*preprocess_ctl)(SpeexPreprocessState *, int, void *);
    SpeexResamplerState *(*resampler_init)(uint32_t, uint32_t, uint32_t, int, int *);
    void (*resampler_destroy)(SpeexResamplerState *);
    int (*resampler_process_int)(SpeexResamplerState *, uint32_t, const int16_t *, uint32_t *, int16_t *, uint32_t *);
} speex;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];
static int loaded = 0;

#define RESOLVE(field, symbol)                                                               \
    do {                                                                                     \
        *(void **)&speex.field = dlsym(library, symbol);                                     \
        if (!speex.field) {                                                                  \
            snprintf(load_error, sizeof load_error, "libspeexdsp.so.1 lacks %s (speexdsp 1.2 is needed)", symbol); \
            return;                                                                          \
        }                                                                                    \
    } while (0)

static void load(void) {
    /* The test hook: pretend the library is missing (TETHER_SPEEXDSP_LIBRARY=/nonexistent). */
    const char *name = getenv("TETHER_SPEEXDSP_LIBRARY");
    void *library = dlopen(name && *name ? name : "libspeexdsp.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load libspeexdsp (install libspeexdsp1): %s", why ? why : "unknown error");
        return;
    }
    RESOLVE(echo_state_init, "speex_echo_state_init");
    RESOLVE(echo_state_destroy, "speex_echo_state_destroy");
    RESOLVE(echo_cancellation, "speex_echo_cancellation");
    RESOLVE(echo_state_reset, "speex_echo_state_reset");
    RESOLVE(echo_ctl, "speex_echo_ctl");
    RESOLVE(preprocess_state_init, "speex_preprocess_state_init");
    RESOLVE(preprocess_state_destroy, "speex_preprocess_state_destroy");
    RESOLVE(preprocess_run, "speex_preprocess_run");
    RESOLVE(preprocess_ctl, "speex_preprocess_ctl");
    RESOLVE(resampler_init, "speex_resampler_init");
    RESOLVE(resampler_destroy, "speex_resampler_destroy");
    RESOLVE(resampler_process_int, "speex_resampler_process_int");
    loaded = 1;
}

const char *tether_speexdsp_load(void) {
    pthread_once(&load_once, load);
    return loaded ? NULL : load_error;
}

SpeexEchoState *tether_speex_echo_state_init(int frame_size, int filter_length) { return speex.echo_state_init(frame_size, filter_length); }
void tether_speex_echo_state_destroy(SpeexEchoState *st) { speex.echo_state_destroy(st); }
void tether_speex_echo_cancellation(SpeexEchoState *st, const int16_t *rec, const int16_t *play, int16_t *out) {
    speex.echo_cancellation(st, rec, play, out);
}
void tether_speex_echo_state_reset(SpeexEchoState *st) { speex.echo_state_reset(st); }
int tether_speex_echo_ctl_int(SpeexEchoState *st, int request, int32_t value) { return speex.echo_ctl(st, request, &value); }

SpeexPreprocessState *tether_speex_preprocess_state_init(int frame_size, int sampling_rate) {
    return speex.preprocess_state_init(frame_size, sampling_rate);
}
void tether_speex_preprocess_state_destroy(SpeexPreprocessState *st) { speex.preprocess_state_destroy(st); }
int tether_speex_preprocess_run(SpeexPreprocessState *st, int16_t *x) { return speex.preprocess_run(st, x); }
int tether_speex_preprocess_ctl_int(SpeexPreprocessState *st, int request, int32_t value) {
    return speex.preprocess_ctl(st, request, &value);
}
int tether_speex_preprocess_set_echo_state(SpeexPreprocessState *st, SpeexEchoState *echo) {
    return speex.preprocess_ctl(st, TETHER_SPEEX_PREPROCESS_SET_ECHO_STATE, echo);
}

SpeexResamplerState *tether_speex_resampler_init(uint32_t channels, uint32_t in_rate, uint32_t out_rate, int quality, int *err) {
    return speex.resampler_init(channels, in_rate, out_rate, quality, err);
}
void tether_speex_resampler_destroy(SpeexResamplerState *st) { speex.resampler_destroy(st); }
int tether_speex_resampler_process(SpeexResamplerState *st, const int16_t *in, uint32_t *in_len, int16_t *out, uint32_t *out_len) {
    return speex.resampler_process_int(st, 0, in, in_len, out, out_len);
}
