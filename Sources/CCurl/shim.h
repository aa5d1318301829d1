#ifndef TETHER_CCURL_SHIM_H
#define TETHER_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these typed
   wrappers are the whole reason this header exists. */
static inline CURLcode tether_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tether_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tether_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tether_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
typedef size_t (*tether_curl_write_cb)(char *, size_t, size_t, void *);
static inline CURLcode tether_curl_setopt_write_function(CURL *h, CURLoption o, tether_curl_write_cb v) { return curl_easy_setopt(h, o, v); }
typedef int (*tether_curl_xferinfo_cb)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
static inline CURLcode tether_curl_setopt_xferinfo_function(CURL *h, CURLoption o, tether_curl_xferinfo_cb v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tether_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode tether_curl_getinfo_string(CURL *h, CURLINFO i, char **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode tether_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tether_curl_setopt_blob(CURL *h, CURLoption o, struct curl_blob *v) { return curl_easy_setopt(h, o, v); }
/* CURL_GLOBAL_DEFAULT is a macro expression Swift does not import. */
static inline CURLcode tether_curl_global_init_default(void) { return curl_global_init(CURL_GLOBAL_DEFAULT); }
#endif
