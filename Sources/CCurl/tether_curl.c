#include "tether_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

/* The libcurl functions tetherd uses, resolved once by load(). */
static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_header *(*easy_nextheader)(CURL *, unsigned int, int, struct curl_header *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
} curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];
static CURLcode init_code = CURLE_FAILED_INIT;

#define RESOLVE(field, symbol)                                                               \
    do {                                                                                     \
        *(void **)&curl.field = dlsym(library, symbol);                                      \
        if (!curl.field) {                                                                   \
            snprintf(load_error, sizeof load_error, "libcurl.so.4 lacks %s (libcurl 7.83 or newer is needed)", symbol); \
            return;                                                                          \
        }                                                                                    \
    } while (0)

static void load(void) {
    /* RTLD_LOCAL: libcurl's dependencies (OpenSSL among them) stay out of the global symbol
       namespace, so they cannot collide with the BoringSSL that tetherd carries for WebSockets. */
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load libcurl (install libcurl4): %s", why ? why : "unknown error");
        return;
    }
    RESOLVE(global_init, "curl_global_init");
    RESOLVE(easy_init, "curl_easy_init");
    RESOLVE(easy_cleanup, "curl_easy_cleanup");
    RESOLVE(easy_perform, "curl_easy_perform");
    RESOLVE(easy_strerror, "curl_easy_strerror");
    RESOLVE(easy_nextheader, "curl_easy_nextheader");
    RESOLVE(slist_append, "curl_slist_append");
    RESOLVE(slist_free_all, "curl_slist_free_all");
    RESOLVE(easy_setopt, "curl_easy_setopt");
    RESOLVE(easy_getinfo, "curl_easy_getinfo");
    init_code = curl.global_init(CURL_GLOBAL_DEFAULT);
    if (init_code != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed: %s", curl.easy_strerror(init_code));
    }
}

CURLcode tether_curl_global_init_default(void) {
    pthread_once(&load_once, load);
    return init_code;
}

const char *tether_curl_load_error(void) {
    pthread_once(&load_once, load);
    return init_code == CURLE_OK ? NULL : load_error;
}

CURL *tether_curl_easy_init(void) { return curl.easy_init(); }
void tether_curl_easy_cleanup(CURL *h) { curl.easy_cleanup(h); }
CURLcode tether_curl_easy_perform(CURL *h) { return curl.easy_perform(h); }
const char *tether_curl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }
struct curl_header *tether_curl_easy_nextheader(CURL *h, unsigned int origin, int request, struct curl_header *prev) {
    return curl.easy_nextheader(h, origin, request, prev);
}
struct curl_slist *tether_curl_slist_append(struct curl_slist *list, const char *string) { return curl.slist_append(list, string); }
void tether_curl_slist_free_all(struct curl_slist *list) { curl.slist_free_all(list); }

CURLcode tether_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl.easy_setopt(h, o, v); }
CURLcode tether_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl.easy_setopt(h, o, v); }
CURLcode tether_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl.easy_setopt(h, o, v); }
CURLcode tether_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl.easy_setopt(h, o, v); }
CURLcode tether_curl_setopt_write_function(CURL *h, CURLoption o, tether_curl_write_cb v) { return curl.easy_setopt(h, o, v); }
CURLcode tether_curl_setopt_xferinfo_function(CURL *h, CURLoption o, tether_curl_xferinfo_cb v) { return curl.easy_setopt(h, o, v); }
CURLcode tether_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v) { return curl.easy_setopt(h, o, v); }
CURLcode tether_curl_setopt_blob(CURL *h, CURLoption o, struct curl_blob *v) { return curl.easy_setopt(h, o, v); }
CURLcode tether_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl.easy_getinfo(h, i, v); }
CURLcode tether_curl_getinfo_string(CURL *h, CURLINFO i, char **v) { return curl.easy_getinfo(h, i, v); }
