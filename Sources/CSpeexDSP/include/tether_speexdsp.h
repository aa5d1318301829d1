#ifndef TETHER_CSPEEXDSP_H
#define TETHER_CSPEEXDSP_H
/* speexdsp (https://gitlab.xiph.org/xiph/speexdsp, BSD, speexdsp/COPYING), the part tetherd's
   echo canceller (`audio.echo: cancel`) uses: the MDF echo canceller, the preprocessor (residual
   echo and noise suppression) and the resampler. Vendored at SpeexDSP-1.2.1-15-g7a15878 and
   compiled into tetherd (Package.swift says why); unmodified but for the headers below, and
   with tether's FFT in place of its fftwrap.c (include/tether_fft.h says why). */
#include "speex/speex_echo.h"
#include "speex/speex_preprocess.h"
#include "speex/speex_resampler.h"
/* tether's own FFT behind speexdsp's (tether/fftwrap_tether.c in place of speexdsp/fftwrap.c). */
#include "tether_fft.h"
#endif
