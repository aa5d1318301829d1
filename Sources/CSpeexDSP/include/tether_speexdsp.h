#ifndef TETHER_SPEEXDSP_H
#define TETHER_SPEEXDSP_H
/* libspeexdsp for tetherd's echo canceller (`audio.echo: cancel`), loaded on first use.

   Only robots that cancel echo in software need libspeexdsp, and a robot without it must
   still run (falling back to the echo gate, and saying so), so nothing links against it: the
   first call to `tether_speexdsp_load` opens libspeexdsp.so.1 with dlopen and resolves the
   functions below. The prototypes and constants are declared here, copied from speexdsp
   1.2's headers (speex_echo.h, speex_preprocess.h, speex_resampler.h: a stable ABI since
   2007), so neither the build nor the robot needs libspeexdsp-dev. */
#include <stdint.h>

typedef struct SpeexEchoState_ SpeexEchoState;
typedef struct SpeexPreprocessState_ SpeexPreprocessState;
typedef struct SpeexResamplerState_ SpeexResamplerState;

#define TETHER_SPEEX_ECHO_SET_SAMPLING_RATE 24
#define TETHER_SPEEX_PREPROCESS_SET_DENOISE 0
#define TETHER_SPEEX_PREPROCESS_SET_NOISE_SUPPRESS 18
#define TETHER_SPEEX_PREPROCESS_SET_ECHO_SUPPRESS 20
#define TETHER_SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE 22
#define TETHER_SPEEX_PREPROCESS_SET_ECHO_STATE 24
#define TETHER_SPEEX_RESAMPLER_QUALITY_VOIP 3

/* Load libspeexdsp (once; thread-safe). NULL when loaded, else why not (dlerror text). */
const char *tether_speexdsp_load(void);

/* Each of these requires a successful tether_speexdsp_load first. */
SpeexEchoState *tether_speex_echo_state_init(int frame_size, int filter_length);
void tether_speex_echo_state_destroy(SpeexEchoState *st);
void tether_speex_echo_cancellation(SpeexEchoState *st, const int16_t *rec, const int16_t *play, int16_t *out);
void tether_speex_echo_state_reset(SpeexEchoState *st);
int tether_speex_echo_ctl_int(SpeexEchoState *st, int request, int32_t value);

SpeexPreprocessState *tether_speex_preprocess_state_init(int frame_size, int sampling_rate);
void tether_speex_preprocess_state_destroy(SpeexPreprocessState *st);
int tether_speex_preprocess_run(SpeexPreprocessState *st, int16_t *x);
int tether_speex_preprocess_ctl_int(SpeexPreprocessState *st, int request, int32_t value);
int tether_speex_preprocess_set_echo_state(SpeexPreprocessState *st, SpeexEchoState *echo);

/* NULL (and *err set) when the rates cannot be converted. */
SpeexResamplerState *tether_speex_resampler_init(uint32_t channels, uint32_t in_rate, uint32_t out_rate, int quality, int *err);
void tether_speex_resampler_destroy(SpeexResamplerState *st);
/* Mono: consumes up to *in_len samples and produces up to *out_len; both updated to what was done. */
int tether_speex_resampler_process(SpeexResamplerState *st, const int16_t *in, uint32_t *in_len, int16_t *out, uint32_t *out_len);

#endif
