/* speexdsp's FFT wrapper (speexdsp/fftwrap.h), in place of speexdsp/fftwrap.c: tether's FFT
   (include/tether_fft.h says why) where it takes the size, speexdsp's smallft where it does
   not. The same contract as fftwrap.c's smallft branch: spx_fft scales by 1/N, spx_ifft does
   not scale; both are out of place. */
#include "../speexdsp/arch.h"
#include "../speexdsp/os_support.h"
#include "../speexdsp/fftwrap.h"
#include "../speexdsp/smallft.h"
#include "tether_fft.h"

struct table {
   int n;
   tether_fft *fast;
   struct drft_lookup slow;
};

void *spx_fft_init(int size)
{
   struct table *t = speex_alloc(sizeof(struct table));
   if (!t) return NULL;
   t->n = size;
   t->fast = tether_fft_new(size);
   if (!t->fast) spx_drft_init(&t->slow, size);
   return t;
}

void spx_fft_destroy(void *table)
{
   struct table *t = table;
   if (t->fast) tether_fft_free(t->fast);
   else spx_drft_clear(&t->slow);
   speex_free(t);
}

void spx_fft(void *table, float *in, float *out)
{
   struct table *t = table;
   float scale = 1.f / t->n;
   int i;
   if (t->fast) {
      tether_fft_forward(t->fast, in, out, scale);
      return;
   }
   for (i = 0; i < t->n; i++) out[i] = scale * in[i];
   spx_drft_forward(&t->slow, out);
}

void spx_ifft(void *table, float *in, float *out)
{
   struct table *t = table;
   int i;
   if (t->fast) {
      tether_fft_inverse(t->fast, in, out);
      return;
   }
   for (i = 0; i < t->n; i++) out[i] = in[i];
   spx_drft_backward(&t->slow, out);
}
