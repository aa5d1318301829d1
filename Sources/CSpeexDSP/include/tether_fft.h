#ifndef TETHER_FFT_H
#define TETHER_FFT_H
/* The real FFT speexdsp's canceller and preprocessor run on (tether/fftwrap_tether.c puts it
   behind speexdsp's fftwrap.h), hand-written for tether (#15): the FFTs were half of the
   canceller's CPU with speexdsp's own smallft, which has no radix-3 or radix-5 forward passes
   and no SIMD, and tether's frames make FFT sizes 2^a 3^b 5^c (960 points for 20 ms at
   24 kHz). Debian offers no FFT that is both faster and BSD-compatible (speexdsp's own copy of
   kissfft measured slower than smallft; FFTW is GPL). This one is about twice as fast as smallft at those sizes
   (docs/BENCHMARKS.md). Sizes it does not take (odd halves, other prime factors) make
   `tether_fft_new` return NULL and speexdsp keeps smallft for them.

   Layout: smallft's (FFTPACK's) half-complex order, out = [X0, Re X1, Im X1, ...,
   Re X(n/2-1), Im X(n/2-1), X(n/2)], X[k] = sum x[j] e^(-2 pi i j k / n). */
typedef struct tether_fft tether_fft;

/* Tables for real transforms of n points; NULL if n is not supported (or no memory). */
tether_fft *tether_fft_new(int n);
void tether_fft_free(tether_fft *f);
/* out = scale * FFT(in), half-complex; in and out are n floats and may not overlap. */
void tether_fft_forward(tether_fft *f, const float *in, float *out, float scale);
/* out = the unnormalised inverse of half-complex in: inverse(forward(x, 1)) = n x. */
void tether_fft_inverse(tether_fft *f, const float *in, float *out);
#endif
